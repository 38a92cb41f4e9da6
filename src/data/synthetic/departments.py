"""Other departments' own exports (issue 17): `persons`, `department_events` and the true links.

Three departments keep person records under their own ids, with no registry `child_id`:
school rolls (学籍号), hospitals and medical insurance (patient ids), and the police household
register (a guardian's death). Who appears:
- registered children: a share `coverage.<source>` of them in school and health;
- ordinary children the registry does not list (and need not), `ordinary_share` x n_children;
- at-risk children missing from the registry, `unregistered_at_risk` x n_children.
Each at-risk child has one risk kind whose records meet one screening rule
(src.linkage.screening_rules): a guardian died (police), a serious illness with high
out-of-pocket costs in a household on medical assistance (health), or a certified disability
and a dropout (school); registered children of matching categories get such records too, so a
missed link makes a false screening. Background records (enrolment, outpatient visits, one of
dropout or disability, one of a low-cost illness or assistance) never meet a rule alone.

The registry is the clean reference. Defects: `synthetic.defects` as for every table (spoiled rows are extra copies). Every
department record gets, at the rates of
`synthetic.departments.noise`: a character typo, a homophone (同音字), traditional forms,
day and month swapped, a birth date a day off, a missing, mistyped, transposed or
shortened ID number, and another county of the prefecture (`other_county`, 0 by default).
A share `duplicate_share` of persons is recorded twice by a department.

`linkage_truth.parquet` (source, source_person_id, person, at_risk) gives the true person of
every record (the registry's child_id, or `U...` for a child it does not list); only tests and
benchmarks read it. Seeded by its own stream, so the other tables never change with it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from src.atomic import write_parquet
from src.data.contract import CATEGORY
from src.data.synthetic import export as ex
from src.data.synthetic.registry import GIVEN_CHARS, Registry, draw_registry
from src.linkage.persons_spec import DEPARTMENT_EVENTS, PERSONS

STREAM = 1017  # this module's seed is [base.seed, STREAM]: independent of generate.STREAMS
NAMES = (PERSONS, DEPARTMENT_EVENTS)  # the contract tables written here (generate skips them)
SOURCES = ("school", "health", "police")
ID_PREFIX = {"school": "XJ", "health": "YB", "police": "HJ"}
KINDS = ("none", "guardian_died", "illness_low_income", "dropout_disability")
SERIOUS_OOP_CNY = (20_000, 150_000)  # a serious illness of an at-risk child: out of pocket
# registered categories whose children get a risk kind, with what probability
KIND_OF_CATEGORY = {
    "orphan": ("guardian_died", 0.6),
    "de_facto_unsupported": ("guardian_died", 0.4),
    "seriously_ill": ("illness_low_income", 0.5),
    "low_income": ("illness_low_income", 0.1),
    "disabled": ("dropout_disability", 0.3),
}
# same pinyin without tones, for names drawn from registry.SURNAMES and GIVEN_CHARS
HOMOPHONES = (
    "张章", "徐许", "何贺", "于余俞", "江姜蒋", "王汪", "石史", "付傅", "黎李", "肖萧", "袁元",
    "程成", "杨阳洋", "吴伍武", "林琳", "严闫颜", "钟仲", "子梓紫", "涵寒含", "欣心新鑫",
    "怡宜仪", "轩萱宣", "浩皓昊", "宇雨语羽玉", "杰洁捷", "佳家嘉", "思斯", "远源媛", "明鸣铭",
    "晨辰", "曦希熙汐", "天添", "雅亚", "琪琦祺", "文雯", "航杭", "然燃", "诗师", "伟玮炜",
    "芳方", "英莹", "静婧", "丽莉", "磊蕾", "军君", "艳燕", "娟鹃", "涛韬", "兰岚", "平萍",
    "刚钢", "桂贵", "婷亭", "鹏朋", "飞菲",
)  # fmt: skip
TRADITIONAL = dict(zip(
    "张刘陈杨黄赵吴孙马罗郑谢韩冯邓叶苏吕卢钟谭陆贾韦邹闫龙贺顾龚万钱严汤轩诺杰远诗伟静丽强军艳涛兰刚鹏飞",
    "張劉陳楊黃趙吳孫馬羅鄭謝韓馮鄧葉蘇呂盧鍾譚陸賈韋鄒閆龍賀顧龔萬錢嚴湯軒諾傑遠詩偉靜麗強軍艷濤蘭剛鵬飛",
    strict=True,
))  # fmt: skip
HOMOPHONE_OF = {ch: group for group in HOMOPHONES for ch in group}


def write(folder: Path, params, registry: Registry, span_end: np.datetime64) -> dict:
    """Write persons, department_events (with the export's defects) and linkage_truth.parquet;
    return their injected_defects.json entries."""
    dep = params.synthetic.departments
    if not dep.enabled:
        return {}
    rng = np.random.default_rng([params.base.seed, STREAM])
    people = population(params, registry, rng)
    records = person_records(people, dep, rng)
    events = department_events(records, people, params.synthetic.start_date, span_end, rng)
    persons = noisy_persons(records, people, dep.noise, rng)
    syn, manifest = params.synthetic, {}
    shares = {k: getattr(syn.defects, k) for k in ex.DEFECT_KINDS}
    for name, frame in ((PERSONS, persons), (DEPARTMENT_EVENTS, events)):
        table = pa.Table.from_pandas(frame, preserve_index=False)
        # spoiled rows are extra copies: every true record stays, so the truth stays complete
        ok = {"default": np.ones(len(frame), dtype=bool), "copies": True}
        if "amount_cny" in frame:
            ok["negative_amount"] = frame["amount_cny"].notna().to_numpy()
        clean, bad, entries = ex.inject_defects(table, name, shares, ok, rng, base_rows=len(frame))
        ex.write_table(folder / name, clean, bad, syn.file_format, syn.encoding)
        manifest[name] = {"rows_written": clean.num_rows + bad.num_rows, "rows_clean": clean.num_rows,
                          "defects": entries}  # fmt: skip
    truth = records[["source", "source_person_id"]].assign(
        person=people["person"].to_numpy()[records["row"]],
        at_risk=people["kind"].to_numpy()[records["row"]] != "none",
    )
    write_parquet(folder / "linkage_truth.parquet", truth)
    return manifest


def population(params, registry: Registry, rng) -> pd.DataFrame:
    """Every child any department may know: the registry's and the unlisted ones, with a kind."""
    syn, dep = params.synthetic, params.synthetic.departments
    n_ordinary = int(round(dep.ordinary_share * registry.n))
    n_risk = int(round(dep.unregistered_at_risk * registry.n))
    others = draw_registry(
        n_ordinary + n_risk, syn.start_date, syn.months, syn.n_counties,
        syn.communities_per_county, 0.0, rng,
    )  # fmt: skip
    categories = np.array(CATEGORY)
    kind = np.full(registry.n, "none", dtype=object)
    for category, (risk, p) in KIND_OF_CATEGORY.items():
        hit = (categories[registry.category] == category) & (rng.random(registry.n) < p)
        kind[hit] = risk
    other_kind = np.full(n_ordinary + n_risk, "none", dtype=object)
    other_kind[n_ordinary:] = np.array(KINDS[1:])[rng.integers(0, 3, size=n_risk)]
    ids = np.char.add("U", np.char.zfill(np.arange(1, len(other_kind) + 1).astype(str), 8))
    return pd.DataFrame(
        {
            "person": np.concatenate([registry.child_id, ids]).astype(str),
            "registered": np.arange(registry.n + len(ids)) < registry.n,
            "name": np.concatenate([registry.name, others.name]),
            "id_number": np.concatenate([registry.id_number, others.id_number]).astype(str),
            "sex": np.where(np.concatenate([registry.sex, others.sex]) == 1, "m", "f"),
            "birth": np.concatenate([registry.birth, others.birth]),
            "county_code": np.concatenate(
                [registry.county_codes[registry.county], others.county_codes[others.county]]
            ).astype(str),
            "kind": np.concatenate([kind, other_kind]),
        }
    )


def person_records(people: pd.DataFrame, dep, rng) -> pd.DataFrame:
    """(source, source_person_id, row into people): who each department holds, some twice."""
    kind = people["kind"].to_numpy()
    held = {
        "school": (rng.random(len(people)) < dep.coverage.school) | (kind == "dropout_disability"),
        "health": (rng.random(len(people)) < dep.coverage.health) | (kind == "illness_low_income"),
        "police": kind == "guardian_died",
    }
    frames = []
    for source in SOURCES:
        rows = np.flatnonzero(held[source])
        twice = rows[rng.random(len(rows)) < dep.duplicate_share]
        rows = np.sort(np.concatenate([rows, twice]), kind="stable")
        serial = rng.permutation(len(rows)) + 10**9 + rng.integers(0, 10**8)
        frames.append(pd.DataFrame({
            "source": source,
            "source_person_id": [f"{ID_PREFIX[source]}{s:010d}" for s in serial],
            "row": rows,
        }))  # fmt: skip
    return pd.concat(frames, ignore_index=True)


def department_events(
    records: pd.DataFrame, people: pd.DataFrame, start, span_end: np.datetime64, rng
) -> pd.DataFrame:
    """Each record's events; a duplicated person's risk records go to its first record only."""
    first = ~records.duplicated(["source", "row"])
    kind = np.where(first, people["kind"].to_numpy()[records["row"]], "none")
    source = records["source"].to_numpy()
    n = len(records)
    u = rng.random(n)
    parts = [
        (source == "school", "enrolled", None),
        ((source == "school") & (kind == "dropout_disability"), "disability_certified", None),
        ((source == "school") & (kind == "dropout_disability"), "dropped_out", None),
        ((source == "school") & (kind == "none") & (u < 0.02), "dropped_out", None),
        ((source == "school") & (kind == "none") & (u > 0.97), "disability_certified", None),
        ((source == "health") & (rng.random(n) < 0.7), "outpatient", (50, 2_000)),
        ((source == "health") & (kind == "illness_low_income"), "serious_illness", SERIOUS_OOP_CNY),
        ((source == "health") & (kind == "illness_low_income"), "medical_assistance", None),
        ((source == "health") & (kind == "none") & (u < 0.03), "serious_illness", (2_000, 15_000)),
        ((source == "health") & (kind == "none") & (u > 0.96), "medical_assistance", None),
        (source == "police", "guardian_death", None),
    ]
    first_day = np.datetime64(start, "D")
    span = int((span_end - first_day).astype(int))
    frames = []
    for mask, event_type, amount in parts:
        rows = np.flatnonzero(mask)
        # risk records fall in the last year, so that screening's look-back sees them
        recent = event_type != "enrolled" and event_type != "outpatient"
        low = max(span - 365, 0) if recent else 0
        day = first_day + rng.integers(low, span, size=len(rows))
        cost = np.full(len(rows), np.nan)
        if amount is not None:
            cost = np.round(rng.uniform(*amount, size=len(rows)), -1)
        frames.append(pd.DataFrame({
            "source": source[rows],
            "source_person_id": records["source_person_id"].to_numpy()[rows],
            "event_date": day,
            "event_type": event_type,
            "amount_cny": cost,
        }))  # fmt: skip
    events = pd.concat(frames, ignore_index=True)
    events["event_date"] = events["event_date"].astype("datetime64[s]").dt.date
    return events.sort_values(
        ["event_date", "source", "source_person_id"], kind="stable", ignore_index=True
    )


def noisy_persons(records: pd.DataFrame, people: pd.DataFrame, noise, rng) -> pd.DataFrame:
    """The shared fields as each department typed them."""
    rows = records["row"].to_numpy()
    n = len(rows)
    names = [misspell(name, noise, rng) for name in people["name"].to_numpy()[rows]]
    birth = people["birth"].to_numpy()[rows].astype("datetime64[D]")
    ids = [mistype(i, noise, rng) for i in people["id_number"].to_numpy()[rows]]
    return (
        pd.DataFrame(
            {
                "source": records["source"].to_numpy(),
                "source_person_id": records["source_person_id"].to_numpy(),
                "name": names,
                "sex": people["sex"].to_numpy()[rows],
                "birth_date": [str(d) for d in mistyped_dates(birth, noise, rng)],
                "id_number": pd.array(ids, dtype="str"),
                "county_code": recorded_county(
                    people["county_code"].to_numpy()[rows], noise.other_county, rng
                ),
                "address_text": [
                    f"{a}{b}村{k}组"
                    for a, b, k in zip(
                        np.array(GIVEN_CHARS)[rng.integers(len(GIVEN_CHARS), size=n)],
                        np.array(GIVEN_CHARS)[rng.integers(len(GIVEN_CHARS), size=n)],
                        rng.integers(1, 12, size=n),
                        strict=True,
                    )
                ],
            }
        )
        .iloc[rng.permutation(n)]
        .reset_index(drop=True)
    )


def recorded_county(county: np.ndarray, share: float, rng) -> np.ndarray:
    """The county a department recorded: a share `other_county` in another county of the same
    prefecture (a school or hospital across the border). No draw at 0: the export is unchanged."""
    if share == 0:
        return county
    out, prefecture = county.copy(), county.astype("U4")
    moved = rng.random(len(county)) < share
    for pref in np.unique(prefecture[moved]):
        pool = np.unique(county[prefecture == pref])
        rows = np.flatnonzero(moved & (prefecture == pref))
        if len(pool) > 1:
            pick = rng.integers(0, len(pool) - 1, size=len(rows))
            out[rows] = pool[pick + (pick >= np.searchsorted(pool, county[rows]))]
    return out


def misspell(name: str, noise, rng) -> str:
    """A name with at most one of each error: traditional forms, a homophone, a typo."""
    chars = list(name)
    if rng.random() < noise.traditional:
        chars = [TRADITIONAL.get(c, c) for c in chars]
    if rng.random() < noise.homophone:
        sounding = [i for i, c in enumerate(chars) if c in HOMOPHONE_OF]
        if sounding:
            i = sounding[rng.integers(len(sounding))]
            others = [c for c in HOMOPHONE_OF[chars[i]] if c != chars[i]]
            chars[i] = others[rng.integers(len(others))]
    if rng.random() < noise.typo and len(chars) > 1:
        chars[1 + rng.integers(len(chars) - 1)] = GIVEN_CHARS[rng.integers(len(GIVEN_CHARS))]
    return "".join(chars)


def mistype(id_number: str, noise, rng) -> str | None:
    """An ID number missing, or with one digit mistyped, two swapped or one left out."""
    u = rng.random()
    if u < noise.id_missing:
        return None
    digits = list(id_number)
    i = int(rng.integers(len(digits) - 1))
    u -= noise.id_missing
    if u < noise.id_digit:
        digits[i] = str((int(digits[i]) + 1 + rng.integers(9)) % 10)
    elif (u := u - noise.id_digit) < noise.id_transposition:
        digits[i], digits[i + 1] = digits[i + 1], digits[i]
    elif u - noise.id_transposition < noise.id_dropped:
        del digits[i]
    return "".join(digits)


def mistyped_dates(birth: np.ndarray, noise, rng) -> np.ndarray:
    """Birth dates with day and month swapped (when that is a date) or one day off."""
    u = rng.random(len(birth))
    out = birth.copy()
    swap = u < noise.day_month_swap
    months = (birth.astype("datetime64[M]").astype(int) % 12) + 1
    days = (birth - birth.astype("datetime64[M]")).astype(int) + 1
    swap &= (days <= 12) & (days != months)
    years = birth.astype("datetime64[Y]").astype(int) + 1970
    swapped = [
        np.datetime64(f"{y:04d}-{d:02d}-{m:02d}")
        for y, m, d in zip(years[swap], months[swap], days[swap], strict=True)
    ]
    out[swap] = np.array(swapped, dtype="datetime64[D]") if swapped else out[swap]
    off = (u >= noise.day_month_swap) & (u < noise.day_month_swap + noise.day_off)
    out[off] += np.where(rng.random(int(off.sum())) < 0.5, -1, 1)
    return out
