import pytest
from pydantic import ValidationError

from moderation.models import Status
from moderation.policy import LabelBands, Reason, SitePolicy, decide, scoring_failed

CLEAN = {"toxicity": 0.02, "insult": 0.01, "threat": 0.0}


def policy(**bands) -> SitePolicy:
    return SitePolicy(labels={label: LabelBands(**b) for label, b in bands.items()})


def test_scores_below_every_threshold_are_approved():
    decision = decide(CLEAN, SitePolicy())
    assert decision.outcome == Status.APPROVED
    assert decision.reasons == ()


def test_a_label_at_its_hold_threshold_holds_with_the_reason():
    decision = decide({"insult": 0.6}, policy(insult={"hold_at": 0.6}))
    assert decision.outcome == Status.HELD
    assert decision.reasons == (Reason("hold_threshold", "insult", 0.6, 0.6),)
    assert decision.reasons[0].message == "insult 0.60 >= hold at 0.60"


def test_every_crossed_label_is_a_reason_highest_first():
    decision = decide(
        {"insult": 0.7, "toxicity": 0.9},
        policy(insult={"hold_at": 0.5}, toxicity={"hold_at": 0.5}),
    )
    assert [r.label for r in decision.reasons] == ["toxicity", "insult"]


def test_reject_band_wins_over_hold():
    decision = decide(
        {"threat": 0.95, "insult": 0.6},
        policy(threat={"hold_at": 0.4, "reject_at": 0.9}, insult={"hold_at": 0.5}),
    )
    assert decision.outcome == Status.REJECTED
    assert decision.reasons[0].code == "reject_threshold"
    assert decision.reasons[0].message == "threat 0.95 >= reject at 0.90"


def test_reject_is_off_by_default():
    assert all(b.reject_at is None for b in SitePolicy().labels.values())
    assert decide({"toxicity": 1.0}, SitePolicy()).outcome == Status.HELD


def test_premoderation_holds_clean_comments():
    decision = decide(CLEAN, SitePolicy(), premoderate=True)
    assert decision.outcome == Status.HELD
    assert decision.reasons[0].code == "premoderation"


def test_labels_the_model_does_not_score_are_ignored():
    assert decide({}, policy(sexual_explicit={"hold_at": 0.1})).outcome == Status.APPROVED


def test_scoring_failure_holds_unless_the_site_fails_open():
    assert scoring_failed(SitePolicy()).outcome == Status.HELD
    assert scoring_failed(SitePolicy()).reasons[0].code == "scoring_failed"
    assert scoring_failed(SitePolicy(fail_open=True)).outcome == Status.APPROVED


def test_reject_below_hold_is_refused():
    with pytest.raises(ValidationError, match="reject_at must not be below hold_at"):
        LabelBands(hold_at=0.8, reject_at=0.5)


def test_stored_policy_round_trips_with_defaults():
    stored = SitePolicy().model_dump(mode="json")
    assert SitePolicy.from_stored(stored) == SitePolicy()
    assert SitePolicy.from_stored(None) == SitePolicy()
