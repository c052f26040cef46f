//! Reports checked in a real headless browser: each page is opened in Chromium, and a small
//! script (added to a copy of the page, never to the report itself) lists every SVG plot
//! with its laid-out size, its number of drawn elements and its title. A plot that does not
//! parse, lays out at zero size or draws nothing fails the test.
//!
//! The browser is `RAMTID_TEST_BROWSER` or `/usr/bin/chromium` (`.ci/run` installs Debian's
//! package). Without one the check is skipped, visibly; under CI a missing browser fails.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The browser to use, or None (skipped, with a note) outside CI.
fn browser() -> Option<PathBuf> {
    let given = std::env::var_os("RAMTID_TEST_BROWSER").map(PathBuf::from);
    let found = given.or_else(|| {
        let p = PathBuf::from("/usr/bin/chromium");
        p.is_file().then_some(p)
    });
    if found.is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "a headless browser is required under CI: install chromium or set RAMTID_TEST_BROWSER"
        );
        eprintln!("SKIPPED: report rendering in a browser: no chromium (RAMTID_TEST_BROWSER)");
    }
    found
}

const PROBE: &str = r#"<script>
const plots = [...document.querySelectorAll('svg')].map(s => {
  const b = s.getBoundingClientRect();
  const t = s.querySelector('title');
  return {id: s.id, w: Math.round(b.width), h: Math.round(b.height),
          drawn: s.querySelectorAll('rect,circle,line,polyline,path,text').length,
          title: t ? t.textContent : ''};
});
const out = document.createElement('pre');
out.id = 'render-check';
out.textContent = JSON.stringify({title: document.title, plots,
  overflow: document.documentElement.scrollWidth > window.innerWidth + 1});
document.body.appendChild(out);
</script>"#;

/// One plot as the browser laid it out.
#[derive(Debug, serde::Deserialize)]
pub struct Plot {
    pub id: String,
    pub w: i64,
    pub h: i64,
    pub drawn: i64,
    pub title: String,
}

#[derive(Debug, serde::Deserialize)]
pub struct Rendered {
    pub title: String,
    pub plots: Vec<Plot>,
    /// Wider than a 1280-pixel window.
    pub overflow: bool,
}

/// Opens `page` in the headless browser and returns what it laid out, or None when skipped.
pub fn render(page: &Path) -> Option<Rendered> {
    let browser = browser()?;
    let tmp = tempfile::tempdir().unwrap();
    let html = std::fs::read_to_string(page).unwrap();
    let probe = match html.rfind("</body>") {
        Some(at) => format!("{}{PROBE}{}", &html[..at], &html[at..]),
        None => format!("{html}{PROBE}"),
    };
    let copy = tmp.path().join("page.html");
    std::fs::write(&copy, probe).unwrap();
    // The flags keep Chromium off the network (the machine's network is closed) and out
    // of the user's profile.
    let out = Command::new("timeout")
        .arg("120")
        .arg(&browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--window-size=1280,2000",
            "--virtual-time-budget=5000",
            "--dump-dom",
        ])
        .arg(format!(
            "--user-data-dir={}",
            tmp.path().join("profile").display()
        ))
        .arg(format!("file://{}", copy.display()))
        .output()
        .expect("start the browser");
    assert!(
        out.status.success(),
        "{} failed: {}",
        browser.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let dom = String::from_utf8_lossy(&out.stdout);
    let start = dom
        .find(r#"<pre id="render-check">"#)
        .unwrap_or_else(|| panic!("the probe did not run; the browser printed:\n{dom}"));
    let body = &dom[start + r#"<pre id="render-check">"#.len()..];
    let json = &body[..body.find("</pre>").unwrap()];
    // --dump-dom escapes the text as HTML.
    let json = json
        .replace("&quot;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&");
    Some(serde_json::from_str(&json).unwrap_or_else(|e| panic!("{e}: {json}")))
}

/// Opens `page` and checks that it holds at least `at_least` plots and every plot named in
/// `ids`; that every plot is laid out (at least 300 × 60 px), draws something and has a
/// title (the accessible name of a `role="img"`); and that the page fits a 1280-px window.
pub fn assert_plots_render(page: &Path, ids: &[&str], at_least: usize) {
    let Some(r) = render(page) else { return };
    let name = page.display();
    assert!(!r.title.is_empty(), "{name}: no page title");
    assert!(!r.overflow, "{name}: wider than 1280 px");
    assert!(r.plots.len() >= at_least, "{name}: {:?}", r.plots);
    for id in ids {
        assert!(
            r.plots.iter().any(|p| p.id == *id),
            "{name}: no plot '{id}' in {:?}",
            r.plots
        );
    }
    for p in &r.plots {
        assert!(
            p.w >= 300 && p.h >= 60,
            "{name}: plot '{}' laid out at {}×{}",
            p.id,
            p.w,
            p.h
        );
        assert!(p.drawn >= 5, "{name}: plot '{}' draws {}", p.id, p.drawn);
        assert!(
            !p.title.trim().is_empty(),
            "{name}: plot '{}' has no title",
            p.id
        );
    }
    eprintln!(
        "{name} in a headless browser: {} plots laid out ({})",
        r.plots.len(),
        r.plots
            .iter()
            .map(|p| format!("'{}' {}×{}", p.title, p.w, p.h))
            .collect::<Vec<_>>()
            .join(", ")
    );
}
