"""Display labels made from id columns: studies and tables talk through ids (arm, ratio, scope, steps, alpha);
labels exist only for people reading a table or a figure."""
from __future__ import annotations

ARMS = {"dense": "dense", "imp": "IMP ticket", "oneshot": "one-shot", "random_reinit": "random reinit",
        "random_mask": "random mask", "baseline": "baseline"}


def arm(name: str) -> str:
    """A lottery arm (or dense / baseline) as tables show it."""
    return ARMS.get(name, name)


def variant(ratio: float, scope: str = "global", steps: int = 1, alpha: float = 0.0, match: str = "") -> str:
    """A structured variant: 'global 30% 1-shot + KD α=0.25', 'KD α=0.5', 'fine-tuned', 'global at local 5%'
    (global pruning to the size of local pruning at 5 %)."""
    kd = f"KD α={alpha:g}" if alpha else ""
    if not ratio:
        return kd or "fine-tuned"
    if match:
        prune = f"{scope} at {match} {ratio:.0%}'s size"
    else:
        prune = f"{scope} {ratio:.0%} " + (f"{steps}-step" if steps > 1 else "1-shot")
    return f"{prune} + {kd}" if kd else prune


def detector(row) -> str:
    """A trained net of any study from its id columns (study, arm, sparsity, ratio, scope, steps, alpha):
    'baseline', 'ticket dense', 'IMP ticket 80%', 'dense', 'global 35% 1-shot + KD α=0.25'."""
    study, name = row["study"], row["arm"]
    if study == "baseline":
        return "baseline"
    if study == "structured":
        return "dense" if name == "dense" else variant(row["ratio"], row["scope"], row["steps"], row["alpha"],
                                                       row.get("match", "") or "")
    if study == "lottery":
        return "ticket dense" if name == "dense" else f"{arm(name)} {row['sparsity']:.0%}"
    return arm(name)
