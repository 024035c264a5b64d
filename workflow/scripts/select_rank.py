"""select_rank: the rank used downstream (BCV argmin, or the config's pinned rank)."""
import json

import xarray as xr

from xasnmf.provenance import write_text_atomic
from xasnmf.workflow import script_context, select_rank

with script_context(snakemake):  # noqa: F821 - injected by Snakemake
    choice = select_rank(xr.load_dataset(snakemake.input[0]), pinned=snakemake.params.pinned,  # noqa: F821
                         rule=snakemake.params.fit.get("rank_rule", "one_se"))  # noqa: F821
    print(json.dumps(choice))
    write_text_atomic(json.dumps(choice, indent=2) + "\n", snakemake.output[0])  # noqa: F821
