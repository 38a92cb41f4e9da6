"""Review outcome codes: labels in both languages map back to their code."""

from src.delivery.review_codes import REVIEW_CODES, code_of, review_labels


def test_every_label_and_code_reads_back_as_its_code():
    for code, (zh, en) in REVIEW_CODES.items():
        assert code_of(code) == code_of(zh) == code_of(f" {en} ") == code
    assert code_of("maybe") is None and code_of("") is None


def test_labels_are_distinct_and_fit_an_excel_list():
    for language in ("zh", "en"):
        labels = review_labels(language)
        assert len(set(labels)) == len(REVIEW_CODES) == 5
        assert not any("," in label for label in labels)  # a list item never splits
    assert review_labels("zh")[0] == "已走访，确认存在风险"
