"""What the live store shows, in the original's terms: disconnected doctors keep their history, and a body's
Discrepancies screen leaves out what its admins hid, until the hide ends (the README's query, on both stores)."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import sqlalchemy as sa

from reval_assets.sources.export import write_export
from reval_assets.sources.files import FileSource
from reval_assets.sources.synthetic import SyntheticSource
from reval_assets_tests.core_sync import publish

README = Path(__file__).resolve().parents[1] / "README.md"


def _readme_query(body: str, dialect: str) -> str:
    """The screen's query as the README shows it (its SQLite spelling of today, made PostgreSQL's if asked)."""
    sql = re.search(r'sqlite3 \.reval/live\.db "(SELECT d\.\* FROM discrepancies.*?)"', README.read_text(), re.S)
    assert sql, "the README shows the Discrepancies screen's query"
    query = " ".join(sql.group(1).split()).replace("'1-1RUZV1D'", f"'{body}'")
    return query if dialect == "sqlite" else query.replace("date('now')", "CURRENT_DATE")


def test_a_bodys_screen_leaves_out_what_it_hid_until_the_hide_ends(runtime, tmp_path: Path) -> None:
    population = SyntheticSource(doctors=1500, seed=5, as_of=date.today())  # hides end relative to today
    folder = write_export(population.extract(), tmp_path / "export", shapes={
        "gmc_doctors": "documents", "hidden_discrepancy_records": "documents"})
    publish(runtime, FileSource(folder))
    with runtime.live.engine.connect() as conn:
        hidden = conn.execute(sa.text("SELECT gmc_reference_number, hidden_for_designated_body_code, "
                                      "hidden_until_date FROM hidden_discrepancies")).all()
        assert hidden, "the synthetic population hides some discrepancies"
        today = date.today()
        active = [h for h in hidden if h[2] is None or date.fromisoformat(str(h[2])) >= today]
        assert active and len(active) < len(hidden)  # some hides have ended: those show again
        body = active[0][1]
        everything = {r[0] for r in conn.execute(sa.text("SELECT gmc_reference_number FROM discrepancies"))}
        shown = {r[0] for r in conn.execute(sa.text(_readme_query(body, runtime.live.dialect)))}
        hidden_here = {h[0] for h in active if h[1] == body}
        ended_here = {h[0] for h in hidden if h[1] == body} - hidden_here
        assert hidden_here <= everything and not hidden_here & shown  # hidden from this body's list
        assert ended_here <= shown and everything - hidden_here == shown
        other = conn.execute(sa.text(_readme_query("1-NOBODY", runtime.live.dialect))).all()
        assert len(other) == len(everything)  # another body still sees them all


def test_a_disconnected_doctor_keeps_their_recommendations_in_the_live_store(runtime, tmp_path: Path) -> None:
    folder = write_export(SyntheticSource(doctors=1500, seed=5).extract(), tmp_path / "export",
                          shapes={"gmc_doctors": "envelopes"})
    publish(runtime, FileSource(folder))
    with runtime.live.engine.connect() as conn:
        gone = conn.execute(sa.text("SELECT gmc_reference_number FROM doctors WHERE NOT exists_in_gmc "
                                    "AND designated_body_code IS NULL AND date_added IS NOT NULL")).scalars().all()
        assert gone, "the older envelope's doctors are disconnected"
        listed = sa.text("SELECT count(*) FROM connections WHERE connection_status = 'CONNECTED' "
                         "AND gmc_reference_number = :n")
        assert conn.execute(listed, {"n": gone[0]}).scalar() == 0
        history = sa.text("SELECT count(*) FROM recommendations WHERE gmc_reference_number IN "
                          f"({', '.join(repr(n) for n in gone)})")
        assert conn.execute(history).scalar() > 0
