// Package browser holds the console's tests in a real headless Chromium
// (github.com/chromedp/chromedp): a module of its own, so that chromedp
// stays out of every other package's dependencies. The tests skip, loudly,
// without a browser; FLAGS_REQUIRE_BROWSER=1 (set by .ci/run) makes that a
// failure. FLAGS_SCREENSHOTS=DIR writes the screenshots the README shows.
package browser
