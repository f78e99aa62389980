"""A simulation run's ledger: the engine on a new journal and chain, and the run folder's files.

``run_dir/`` holds ``journal.sqlite`` (unless ``db_url``), ``ledger.json`` (chain, chain id,
contract, operator, market settings, where the journal is) and, for the embedded chain,
``chain-transactions.jsonl`` (every raw transaction it executed, which the audit re-executes).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from p2penergy.ledger.chain import EMBEDDED, Chain
from p2penergy.ledger.engine import Engine, Listener
from p2penergy.ledger.journal import Journal, sqlite_url
from p2penergy.ledger.keys import Key, operator_for, operator_label
from p2penergy.ledger.pipeline import PipelinedChain
from p2penergy.market import MarketSettings
from p2penergy.market.book import SiteLimitMap

if TYPE_CHECKING:
    from p2penergy.provenance import Registry

JOURNAL_FILE = "journal.sqlite"
CHAIN_LOG_FILE = "chain-transactions.jsonl"
LEDGER_FILE = "ledger.json"
# SQLite WAL auto-checkpoint interval of a run's journal, in pages (4 KiB: ~400 MB of WAL at
# most). SQLite's default, 1000 pages (~4 MB), checkpoints the month's journal (~160 MB, one
# flush per slot) about 40 times, each rewriting and fsyncing index pages the last one already
# wrote: measured on this machine (load ~1.5), writing a 3-day journal's rows ten times over
# (222k rows, the month's count) in 1,488 flushes (one per slot of the month) took
# 14.8-16.3 s with the default, 8.8 s at 10,000 pages and 4.7 s + 3.2 s (one checkpoint when
# the journal closes) with none. A run's journal is written by one process and
# checkpointed when it closes; a crash of the process loses nothing more, but a power loss can
# lose what was written since the last checkpoint (with NORMAL sync the WAL is synced only
# there): up to the whole run here, which is run again (the embedded chain is lost with it).
RUN_CHECKPOINT_PAGES = 100_000


def create_run_engine(settings: MarketSettings, run_dir: Path | None = None, db_url: str | None = None,
                      chain_url: str | None = None, seed: int = 0, operator: Key | None = None,
                      pipelined: bool = False, registry: Registry | None = None,
                      listener: Listener | None = None, site_limits: SiteLimitMap | None = None) -> Engine:
    """A new journal, the chain (in-process unless ``chain_url``) with the contract deployed,
    and the engine on them.

    With ``run_dir`` the journal is ``run_dir/journal.sqlite`` (unless ``db_url``), the embedded
    chain's transactions go to ``run_dir/chain-transactions.jsonl`` and ``run_dir/ledger.json``
    says where everything is (what ``p2penergy audit RUN_DIR`` reads). ``pipelined`` runs the
    embedded chain in a worker process so commits overlap the simulation (see ``pipeline.py``).
    ``operator``: the contract operator's own key (required with ``chain_url``; on the embedded
    chain the default is the demonstration key derived from ``seed``). ``site_limits``: the CDA's
    per-site P2P limits per slot, journalled in the genesis row (:meth:`Engine.create`).
    """
    operator = operator_for(chain_url, operator, seed)  # refuses a seed-derived key on an external chain
    if run_dir is not None:
        run_dir = Path(run_dir)
        run_dir.mkdir(parents=True, exist_ok=True)
    url = db_url or (sqlite_url(run_dir / JOURNAL_FILE) if run_dir is not None else "sqlite://")
    journal = Journal(url, checkpoint_pages=RUN_CHECKPOINT_PAGES)
    if journal.head[0] != 0:
        raise ValueError(f"db_url: the journal at {url} is not empty; a run starts a new journal")
    chain: Chain | PipelinedChain
    if chain_url:
        chain = Chain.connect(chain_url, operator)
    else:
        log = run_dir / CHAIN_LOG_FILE if run_dir is not None else None
        if log is not None and log.exists():
            log.unlink()
        chain = PipelinedChain(operator, log) if pipelined else Chain.in_process(operator, log)
    chain.deploy()
    engine = Engine.create(settings, journal, chain, chain=chain.kind, chain_id=chain.chain_id,
                           contract=chain.address, operator=operator.address,
                           extra={"operator_key": operator_label(operator)}, registry=registry, listener=listener,
                           site_limits=site_limits)
    if run_dir is not None:
        keys = ("format_version", "chain", "chain_id", "contract", "operator", "operator_key", "market")
        meta = {k: json.loads(v) for k in keys if (v := journal.get_meta(k)) is not None}
        doc = dict(meta, journal=url if db_url else JOURNAL_FILE,
                   chain_log=CHAIN_LOG_FILE if chain.kind == EMBEDDED else None)
        (run_dir / LEDGER_FILE).write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    return engine
