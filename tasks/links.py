"""Links a run leaves behind: the Prefect UI page of the running flow."""

from prefect.runtime import flow_run
from prefect.settings import PREFECT_UI_URL


def flow_run_url() -> str | None:
    """PREFECT_UI_URL + /runs/flow-run/<id>, when a UI is known (set, or derived from PREFECT_API_URL) and this
    runs inside a flow."""
    ui, run_id = PREFECT_UI_URL.value(), flow_run.id
    return f"{str(ui).rstrip('/')}/runs/flow-run/{run_id}" if ui and run_id else None
