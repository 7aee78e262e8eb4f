"""CI checks what it claims: a test whose tool (Java, PostgreSQL, Chromium, Playwright, a tmpfs
mount) is missing fails, saying how to install it; it never skips, so a green run has run it."""

import re
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]
# Every way a pytest or unittest test can skip itself. A strict xfail (tests/chaos) is not one:
# it fails as soon as the bug it reproduces is fixed.
SKIP = re.compile(r"\bpytest\.skip\b|\bmark\.skip(if)?\b|\bimportorskip\b|\bunittest\.skip|\bSkipTest\b")


def skips_in(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if SKIP.search(line)]


def test_the_scan_finds_each_way_of_skipping():
    written = """
        pytest.skip("java is not installed")
        @pytest.mark.skipif(shutil.which("java") is None, reason="no java")
        @pytest.mark.skip(reason="later")
        playwright = pytest.importorskip("playwright")
        raise unittest.SkipTest("no chromium")
    """
    assert len(skips_in(written)) == 5
    assert skips_in('pytest.fail("java is not installed: apt-get install default-jre-headless")') == []


def test_no_test_skips_itself():
    found = {}
    for path in sorted(TESTS.rglob("*.py")):
        name = str(path.relative_to(TESTS.parent))
        if path == Path(__file__).resolve():
            continue
        lines = skips_in(path.read_text())
        if lines:
            found[name] = lines
    assert found == {}, "fail with how to install the tool instead of skipping: " + repr(found)
