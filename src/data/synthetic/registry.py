"""The child-welfare registry: who the children are, where they live, and their benefits."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np

from src.data.contract import BENEFIT, CATEGORY

# National mix (MCA statistics, roughly): left-behind and low-income children dominate.
CATEGORY_SHARE = {
    "orphan": 0.04,
    "de_facto_unsupported": 0.07,
    "left_behind": 0.30,
    "low_income": 0.26,
    "extreme_poverty": 0.10,
    "disabled": 0.10,
    "seriously_ill": 0.05,
    "other": 0.08,
}
# P(guardian_type | category), columns in GUARDIAN_TYPE order.
GUARDIAN_GIVEN_CATEGORY = {
    "orphan": (0.0, 0.0, 0.55, 0.30, 0.13, 0.02),
    "de_facto_unsupported": (0.0, 0.05, 0.55, 0.30, 0.07, 0.03),
    "left_behind": (0.02, 0.08, 0.80, 0.10, 0.0, 0.0),
    "low_income": (0.45, 0.35, 0.15, 0.05, 0.0, 0.0),
    "extreme_poverty": (0.35, 0.35, 0.20, 0.09, 0.0, 0.01),
    "disabled": (0.50, 0.25, 0.15, 0.05, 0.05, 0.0),
    "seriously_ill": (0.55, 0.25, 0.15, 0.05, 0.0, 0.0),
    "other": (0.40, 0.30, 0.20, 0.08, 0.01, 0.01),
}
BENEFIT_OF_CATEGORY = {
    "orphan": "orphan_allowance",
    "de_facto_unsupported": "basic_living",
    "left_behind": "dibao",
    "low_income": "dibao",
    "extreme_poverty": "basic_living",
    "disabled": "disability_subsidy",
    "seriously_ill": "dibao",
    "other": "other",
}
# Monthly amount range (CNY) per benefit, in BENEFIT order.
AMOUNT_RANGE = {
    "basic_living": (1100, 1500),
    "orphan_allowance": (1500, 1900),
    "dibao": (600, 1000),
    "disability_subsidy": (600, 900),
    "other": (600, 800),
}
RURAL_SHARE = {"left_behind": 0.95}  # other categories: DEFAULT_RURAL_SHARE
DEFAULT_RURAL_SHARE = 0.6
LATE_REGISTRATION_SHARE = 0.25  # registered after the span starts

SURNAMES = list(
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁"
    "任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤"
)
GIVEN_CHARS = list(
    "子涵欣怡梓轩浩宇雨萱一诺俊杰佳思远明晨曦嘉天佑雅琪博文紫航若汐昊然诗伟芳娜秀英敏静丽强磊军洋勇艳娟涛超兰霞平刚桂玉婷鑫鹏飞"
)
# Names that break naive CSV/HTML handling: quotes, commas, newlines, formula prefixes, markup.
HOSTILE_AFFIXES = (
    ("=", ""),
    ("+", ""),
    ("-", ""),
    ("@", ""),
    ('"', '"'),
    ("", ",小"),
    ("", "\n二"),
    ("<script>alert('x')</script>", ""),
    ("<b>", "</b>"),
    ('=HYPERLINK("http://x","', '")'),
)
ID_WEIGHTS = np.array([7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2])
ID_CHECK = np.array(list("10X98765432"))


@dataclass(frozen=True)
class Registry:
    """One entry per child, as parallel arrays; codes are indices into the contract tuples."""

    child_id: np.ndarray
    name: np.ndarray
    id_number: np.ndarray
    sex: np.ndarray  # 0 = f, 1 = m
    birth: np.ndarray  # datetime64[D]
    ethnicity: np.ndarray
    hukou: np.ndarray  # 0 = rural, 1 = urban
    county: np.ndarray  # index into county_codes
    community: np.ndarray  # index into community_codes
    category: np.ndarray
    disability: np.ndarray
    guardian: np.ndarray
    registered: np.ndarray  # datetime64[D]
    benefit: np.ndarray
    base_amount: np.ndarray  # CNY per month in the first year
    county_codes: np.ndarray
    community_codes: np.ndarray

    @property
    def n(self) -> int:
        return len(self.child_id)

    @property
    def turns_18(self) -> np.ndarray:
        return add_years(self.birth, 18)


def add_years(days: np.ndarray, years: int) -> np.ndarray:
    """Same month and day `years` later (29 Feb -> 1 Mar), vectorised."""
    y = days.astype("datetime64[Y]")
    offset = days - y.astype("datetime64[D]")
    target = (y + years).astype("datetime64[D]")
    return target + offset - ((offset > 58) & _is_leap(y) & ~_is_leap(y + years))


def _is_leap(y: np.ndarray) -> np.ndarray:
    year = y.astype(int) + 1970
    return (year % 4 == 0) & ((year % 100 != 0) | (year % 400 == 0))


def draw_registry(
    n: int, start: dt.date, months: int, n_counties: int, per_county: int, hostile_rate: float, rng
) -> Registry:
    """Draw `n` children: geography, category, guardian, disability, dates, benefit, identity."""
    county_codes = np.array([f"52{24 + i // 60:02d}{21 + i % 60:02d}" for i in range(n_counties)])
    community_codes = np.array([f"{c}{j + 1:03d}" for c in county_codes for j in range(per_county)])
    county = rng.choice(n_counties, size=n, p=rng.dirichlet(np.full(n_counties, 4.0)))
    community = county * per_county + rng.integers(0, per_county, size=n)
    category = rng.choice(len(CATEGORY), size=n, p=[CATEGORY_SHARE[c] for c in CATEGORY])
    guardian = _draw_given(category, [GUARDIAN_GIVEN_CATEGORY[c] for c in CATEGORY], rng)
    rural_p = np.array([RURAL_SHARE.get(c, DEFAULT_RURAL_SHARE) for c in CATEGORY])[category]
    birth, registered = _draw_dates(n, np.datetime64(start, "D"), months, rng)
    sex = rng.integers(0, 2, size=n).astype(np.int8)
    benefit = np.array([BENEFIT.index(BENEFIT_OF_CATEGORY[c]) for c in CATEGORY])[category]
    low, high = np.array([AMOUNT_RANGE[b] for b in BENEFIT]).T
    amount = np.round((low[benefit] + rng.random(n) * (high[benefit] - low[benefit])) / 10) * 10
    child_id = np.char.add("C", np.char.zfill(np.arange(1, n + 1).astype(str), 8))
    return Registry(
        child_id=child_id,
        name=draw_names(n, hostile_rate, rng),
        id_number=make_id_numbers(county_codes[county], birth, sex, rng),
        sex=sex,
        birth=birth,
        ethnicity=(rng.random(n) < 0.18).astype(np.int8),
        hukou=(rng.random(n) >= rural_p).astype(np.int8),
        county=county,
        community=community,
        category=category.astype(np.int8),
        disability=_draw_disability(category, rng),
        guardian=guardian.astype(np.int8),
        registered=registered,
        benefit=benefit.astype(np.int8),
        base_amount=amount,
        county_codes=county_codes,
        community_codes=community_codes,
    )


def _draw_given(condition: np.ndarray, table: list, rng) -> np.ndarray:
    """One categorical draw per row from the row of `table` picked by `condition`."""
    cdf = np.cumsum(np.asarray(table, dtype=float), axis=1)[condition]
    return (rng.random(len(condition))[:, None] > cdf).sum(axis=1).clip(0, cdf.shape[1] - 1)


def _draw_disability(category: np.ndarray, rng) -> np.ndarray:
    disabled = category == CATEGORY.index("disabled")
    level = np.where(
        disabled, 1 + _draw_given(np.zeros_like(category), [(0.2, 0.35, 0.3, 0.15)], rng), 0
    )
    mild = ~disabled & (rng.random(len(category)) < 0.04)
    return np.where(mild, rng.integers(1, 3, size=len(category)), level).astype(np.int8)


def _draw_dates(n: int, start: np.datetime64, months: int, rng) -> tuple[np.ndarray, np.ndarray]:
    """Birth and registration dates; a share registers during the span (never on a month start)."""
    late = rng.random(n) < LATE_REGISTRATION_SHARE
    month = rng.integers(1, max(months, 2), size=n)
    reg_late = start.astype("datetime64[M]") + month
    reg_late = reg_late.astype("datetime64[D]") + rng.integers(1, 28, size=n)
    age_at_reg = rng.integers(30, int(17.5 * 365.25), size=n)
    age_at_start = rng.integers(0, int(18 * 365.25) - 1, size=n)
    birth = np.where(late, reg_late - age_at_reg, start - age_at_start)
    earliest = np.maximum(birth + 30, start - 6 * 365)
    span = (start - earliest).astype(int)
    reg_early = earliest + (rng.random(n) * np.maximum(span, 1)).astype(int)
    registered = np.where(late, reg_late, np.minimum(reg_early, start - 1))
    return birth.astype("datetime64[D]"), np.maximum(registered, birth).astype("datetime64[D]")


def draw_names(n: int, hostile_rate: float, rng) -> np.ndarray:
    """Plausible Chinese names; a share `hostile_rate` carry CSV/HTML-hostile characters."""
    surname = np.array(SURNAMES)[rng.integers(0, len(SURNAMES), size=n)]
    chars = np.array(GIVEN_CHARS)
    first = chars[rng.integers(0, len(chars), size=n)]
    second = np.where(rng.random(n) < 0.7, chars[rng.integers(0, len(chars), size=n)], "")
    names = np.char.add(np.char.add(surname, first), second).astype(object)
    hostile = np.flatnonzero(rng.random(n) < hostile_rate)
    affix = np.arange(len(hostile)) % len(HOSTILE_AFFIXES)  # every kind shows up
    prefix = np.array([a[0] for a in HOSTILE_AFFIXES], dtype=object)[affix]
    suffix = np.array([a[1] for a in HOSTILE_AFFIXES], dtype=object)[affix]
    names[hostile] = prefix + names[hostile] + suffix
    return names


def make_id_numbers(area: np.ndarray, birth: np.ndarray, sex: np.ndarray, rng) -> np.ndarray:
    """18-character resident ID numbers: area, birth date, sequence (odd = male), check digit."""
    n = len(area)
    ymd = np.char.replace(np.datetime_as_string(birth, unit="D"), "-", "")
    seq = rng.integers(0, 500, size=n) * 2 + sex  # the 17th digit's parity is the sex
    body = np.char.add(np.char.add(area.astype(str), ymd), np.char.zfill(seq.astype(str), 3))
    digits = np.frombuffer(body.astype("S17").tobytes(), dtype=np.uint8).reshape(n, 17) - 48
    check = ID_CHECK[(digits.astype(np.int64) @ ID_WEIGHTS) % 11]
    return np.char.add(body, check)
