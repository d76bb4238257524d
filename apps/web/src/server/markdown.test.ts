import { describe, expect, it } from "vitest";
import { mdCode, mdText } from "./markdown";

describe("text embedded in the Markdown exports", () => {
  it("turns HTML from a kernel line into visible text", () => {
    expect(mdText('<img src=x onerror="alert(1)"><script>x</script>')).toBe(
      "&lt;img src=x onerror=&quot;alert\\(1\\)&quot;&gt;&lt;script&gt;x&lt;/script&gt;",
    );
  });

  it("escapes Markdown: no image beacons, links, emphasis, or cells broken out of", () => {
    expect(mdText("![t](http://evil/p.png) [x](javascript:1) *a* _b_ | c\nd")).toBe(
      "!\\[t\\]\\(http://evil/p.png\\) \\[x\\]\\(javascript:1\\) \\*a\\* \\_b\\_ \\| c d",
    );
    expect(mdText(null)).toBe("");
  });

  it("fences code spans longer than any backtick run inside", () => {
    expect(mdCode('{"a":1}')).toBe('`{"a":1}`');
    expect(mdCode("a``b")).toBe("```a``b```");
    expect(mdCode("`x")).toBe("`` `x ``");
    expect(mdCode("a|b\nc")).toBe("`a\\|b c`");
  });
});
