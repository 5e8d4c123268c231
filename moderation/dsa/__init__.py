"""The EU Digital Services Act duties: notices of illegal content (Art. 16), statements of
reasons for every restriction (Art. 17), appeals (Art. 20), exports to the Commission's
Transparency Database (Art. 24(5)) and the transparency report's figures.

Domain code only: functions take a Session, flush, and never commit; no Flask here.
"""
