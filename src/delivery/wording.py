"""The watchlist's words, in Chinese and English: page text, column headings, band names."""

TEXT = {
    "zh": {
        "lang": "zh-CN",
        "title": "困境儿童重点关注名单",
        "county": "县（市、区）",
        "as_of": "数据截至",
        "disclaimer": "本名单仅用于辅助儿童主任和工作人员开展人工复核与走访，不对任何福利待遇或服务作出决定。"
        "名单按模型估计的脱离保障风险排序，原因由模型解释生成，请结合实际情况核实。",
        "capacity": "本月走访能力：{capacity} 名儿童（每名儿童主任 {per} 名 × {n} 名儿童主任）",
        "cut": "走访能力线：以上 {capacity} 名儿童建议本月优先走访，以下儿童供参考",
        "reengage": "已脱离保障 — 需重新衔接",
        "reengage_note": "以下儿童已脱离相应保障（未评分），请核实原因并协助重新衔接。",
        "none": "无",
        "index_title": "困境儿童重点关注名单 — 各县目录",
        "bands": {"low": "低", "medium": "中", "high": "高"},
        "changes": {"new": "新增", "rising": "上升", "falling": "下降", "same": "持平"},
        "sections": {"above_cut": "优先走访", "below_cut": "能力线以下", "already_out": "已脱离保障"},
        "columns": {
            "section": "分组", "rank": "排名", "child_id": "儿童编号", "name": "姓名",
            "community": "村（社区）", "caseworker": "儿童主任", "risk": "风险概率",
            "band": "风险等级", "change": "较上月", "reasons": "主要原因",
            "primary_system": "主要保障领域", "service": "建议服务", "review": "复核意见",
            "nets": "已脱离的保障",
        },
        "index_columns": {
            "county": "县（市、区）代码", "n_scored": "评分儿童数", "capacity": "走访能力",
            "n_already_out": "已脱离保障", "link": "名单",
        },
        "open": "打开",
        "legend": "风险等级：低 < {low}；中 {low}–{high}；高 ≥ {high}。较上月：变化达 {thr} 个百分点为上升/下降。",
    },
    "en": {
        "lang": "en",
        "title": "Watchlist of children in difficult circumstances",
        "county": "County",
        "as_of": "Data as of",
        "disclaimer": "This list supports a human review by caseworkers. It decides nothing about any benefit "
        "or service. Children are ordered by the model's estimated risk of dropping out of the safety "
        "net; the reasons come from the model's explanations and must be checked on the ground.",
        "capacity": "Visits this month: {capacity} children ({per} per caseworker × {n} caseworkers)",
        "cut": "Capacity line: the {capacity} children above are suggested for a visit this month; those below are for reference",
        "reengage": "Already out — re-engage",
        "reengage_note": "These children have already left a safety net (not scored). Check why and help them back in.",
        "none": "none",
        "index_title": "Watchlists by county",
        "bands": {"low": "low", "medium": "medium", "high": "high"},
        "changes": {"new": "new", "rising": "rising", "falling": "falling", "same": "same"},
        "sections": {"above_cut": "visit", "below_cut": "below the line", "already_out": "already out"},
        "columns": {
            "section": "section", "rank": "rank", "child_id": "child_id", "name": "name",
            "community": "community", "caseworker": "caseworker", "risk": "risk",
            "band": "band", "change": "change", "reasons": "reasons",
            "primary_system": "primary system", "service": "suggested service", "review": "review",
            "nets": "net(s) left",
        },
        "index_columns": {
            "county": "county code", "n_scored": "children scored", "capacity": "capacity",
            "n_already_out": "already out", "link": "watchlist",
        },
        "open": "open",
        "legend": "Risk band: low < {low}; medium {low}–{high}; high ≥ {high}. Change: rising/falling when the risk moved by at least {thr} percentage points.",
    },
}  # fmt: skip
CSV_COLUMNS = (
    "section", "rank", "child_id", "name", "community", "caseworker", "risk", "band",
    "change", "reasons", "primary_system", "service", "review",
)  # fmt: skip
