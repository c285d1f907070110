# Shared helpers: result paths and input functions.
import alft

RESULTS = f"results/{config['experiment']}"
LOGS = f"{RESULTS}/logs"
BENCH = f"{RESULTS}/benchmarks"


def all_targets():
    """Final outputs of the default run (`rule all`)."""
    return []
