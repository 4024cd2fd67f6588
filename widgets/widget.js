/*
 * fundgoal's embed script: draws every campaign progress bar on an article page
 * (README "Embedding the bar"; DESIGN convention 10). An article includes
 *
 *   <div data-fundgoal="SLUG" data-locale="en"><a href="https://HOST/donate/SLUG">Support us</a></div>
 *   <script async src="https://HOST/widget.js"></script>
 *
 * and this script replaces each such element's content with the bar, in one step.
 *
 * Its promises (tests/test_widget_size.py checks them on this source and on the served bytes):
 * - one request for all the bars of a page, to the server the script came from, without
 *   cookies (credentials omitted) and to no third party;
 * - data is only ever text (textContent): a campaign title is untrusted input;
 * - each bar lives in an open Shadow DOM styled by a constructed stylesheet: the page's CSS
 *   cannot break it, its CSS cannot leak, and a strict page CSP needs no style-src change;
 * - no layout shift once it runs: each element's height is reserved before the data arrives;
 * - no timers, storage or cookies: it fetches again only when the tab is shown again.
 *
 * This is the readable source. The server builds the bytes it serves from this file and
 * widget.css with a minifier, at start-up (src/fundgoal/widget_build.py); the size budget
 * (2,560 bytes gzipped) applies to those. The class names are widget.css's: see its legend.
 */
(() => {
  const doc = document;

  // The <script> element that loaded us: its origin is the fundgoal server to ask for data.
  // currentScript names it in every current browser; the last matching tag is the fallback
  // where it is missing (old browsers, loaders that evaluate the code themselves).
  const thisScript =
    doc.currentScript || [...doc.querySelectorAll('script[src*="/widget"]')].pop();

  // widget.css, minified: the build replaces this string (it must stay the only one like it).
  const STYLESHEET = "@WIDGET_CSS@";

  // One constructed stylesheet, shared by every bar's shadow root; made on first use.
  let sharedStylesheet;
  const stylesheet = () => {
    if (!sharedStylesheet) {
      sharedStylesheet = new CSSStyleSheet();
      sharedStylesheet.replaceSync(STYLESHEET);
    }
    return sharedStylesheet;
  };

  // Every element this script adopted, still in the page or not (pruned on each refresh):
  // {host, root, key, options, compact} and, once drawn, json (the answer drawn) and percent.
  let bars = [];

  /** A new element with a class and some text, appended to `parent` when there is one. */
  const addElement = (parent, className, text, tagName = "div") => {
    const element = doc.createElement(tagName);
    element.className = className;
    // textContent, never innerHTML: data is shown, not parsed.
    element.textContent = text;
    if (parent) parent.append(element);
    return element;
  };

  const setAttributes = (element, attributes) => {
    for (const name in attributes) element.setAttribute(name, attributes[name]);
    return element;
  };

  /** Sets a percentage custom property: --p (how full) or --x (a position on the track). */
  const setPercent = (element, property, value) => {
    element.style.setProperty("--" + property, value + "%");
    return element;
  };

  /** Makes `content` the whole of a bar's shadow root, styled by the shared stylesheet. */
  const show = (root, content) => {
    root.adoptedStyleSheets = [stylesheet()];
    root.replaceChildren(content);
  };

  /** Draws one bar from its campaign's progress JSON (the server's /api/campaigns answer). */
  const draw = (bar, progress) => {
    // A revalidated answer is often the same: then leave the DOM (and the reader) alone.
    const json = JSON.stringify(progress);
    if (bar.json == json) return;
    const options = bar.options;
    const compact = bar.compact;
    const text = progress.formatted || {}; // strings the server formatted for the locale
    const scaleMax = progress.scale_max;
    const fullness = progress.bar_percent;
    const goalReached = progress.goal_reached;

    const card = addElement(
      0,
      "w " + (options.theme || "auto") + (compact ? " c" : "") + (goalReached ? " g" : ""),
    );
    card.dir = progress.dir;
    card.lang = (progress.locale || "").replace("_", "-"); // Babel's pt_BR is HTML's pt-BR
    if (compact) {
      addElement(card, "n", progress.title);
    } else {
      const head = addElement(card, "h");
      addElement(head, "n", progress.title);
      addElement(head, "pc", goalReached ? text.reached : text.percent);
    }

    const track = setAttributes(addElement(card, "t"), {
      role: "progressbar",
      "aria-valuemin": 0,
      "aria-valuemax": scaleMax,
      "aria-valuenow": Math.min(progress.raised, scaleMax),
      "aria-valuetext": text.valuetext,
      "aria-label": progress.title,
    });
    addElement(track, "f");
    if (!compact) setPercent(addElement(track, "q mk", text.raised), "x", fullness);

    // A tick inside the track for each inner milestone; a label under it for each milestone
    // (and zero), as [position, amount, milestone label, reached].
    const labels = [[0, text.zero]];
    for (const milestone of progress.milestones || []) {
      if (milestone.shown === false) continue; // the server hides ticks past a stretch goal
      const position = Math.min(100, (100 * milestone.amount) / scaleMax);
      if (position > 0 && position < 100) setPercent(addElement(track, "x"), "x", position);
      labels.push([position, milestone.formatted, milestone.label, milestone.reached]);
    }

    let foot;
    if (compact) {
      addElement(card, "r", text.raised);
    } else {
      // From the end of the track backwards, skip a label closer than 14% of the track to the
      // one drawn after it: the goal's label always shows, and labels never overlap.
      let nextPosition = 1e9;
      for (const [position, amount, label, reached] of labels.reverse()) {
        if (nextPosition - position > 14) {
          const tickLabel = addElement(track, "q l" + (reached ? " y" : ""), amount);
          setPercent(tickLabel, "x", (nextPosition = position));
          tickLabel.title = label || "";
        }
      }
      foot = addElement(card, "o");
      addElement(
        foot,
        "s",
        [options.donors != "false" && text.donors, text.deadline].filter(Boolean).join(" · "),
      );
    }
    if (options.button != "false") {
      // The link goes only to a web address: a hostile answer cannot plant javascript: here.
      if (progress.status == "active" && /^https?:/.test(progress.donate_url)) {
        setAttributes(addElement(foot || card, "bt", text.button, "a"), {
          href: progress.donate_url,
          target: "_blank",
        });
      } else if (!compact) {
        addElement(foot, "s", text.closed);
      }
    }
    // data-accent is the page author's, but still checked: only a colour reaches the CSS.
    if (options.accent && CSS.supports("color", options.accent)) {
      card.style.setProperty("--a", options.accent);
    }

    // Animate the fill from where it was (0 the first time) to where it is now: draw at the old
    // width, make the browser lay that out, then set the new width so the transition runs.
    setPercent(card, "p", bar.percent || 0);
    show(bar.root, card);
    track.getBoundingClientRect();
    setPercent(card, "p", (bar.percent = fullness));
    bar.json = json;
  };

  /** Adopts the page's new bar elements, then fetches every bar's data in one request. */
  const refresh = (revalidate) => {
    for (const host of doc.querySelectorAll("[data-fundgoal]")) {
      const options = host.dataset;
      const key = options.fundgoal + ":" + (options.locale || doc.documentElement.lang || "en");
      const compact = options.compact != null && options.compact != "false";
      // A host already has a shadow root when this script runs twice on a page: skip it. A key
      // the server would refuse is left alone, with its fallback link.
      if (!host.shadowRoot && /^[a-z0-9-]{1,64}:[\w-]{1,35}$/.test(key)) {
        try {
          // The stylesheet first: a browser without constructable stylesheets (Safari before
          // 16.4) throws here, before the host gets a shadow root that would hide its link.
          stylesheet();
          const root = host.attachShadow({ mode: "open" });
          // Until the data comes, a slot shows the host's own fallback link at the bar's height.
          show(root, addElement(0, compact ? "p c" : "p", "", "slot"));
          bars.push({ host, root, key, options, compact });
        } catch (_) {
          // No constructable stylesheets, or a host that cannot have a shadow root: the
          // fallback link stays.
        }
      }
    }
    const current = (bars = bars.filter((bar) => bar.host.isConnected));
    // Sorted and deduplicated, so every page with the same bars asks the same cacheable URL.
    const keys = [...new Set(current.map((bar) => bar.key))].sort().join();
    if (!keys) return;
    fetch(new URL(thisScript.src).origin + "/api/campaigns?c=" + keys, {
      credentials: "omit",
      mode: "cors",
      // Shown again: revalidate with the ETag rather than trust max-age (a 304 is cheap).
      cache: revalidate ? "no-cache" : "default",
    })
      .then((response) => response.json())
      .then(
        (answer) => answer.items || {},
        () => ({}),
      )
      .then((items) => {
        for (const bar of current) {
          const progress = items[bar.key];
          if (progress && !progress.error) draw(bar, progress);
          // Never drawn and no data: give the reserved height back; the fallback link stays.
          else if (!bar.json) bar.root.lastChild.className = "";
        }
      });
  };

  if (thisScript) {
    if (doc.readyState == "loading") doc.addEventListener("DOMContentLoaded", () => refresh());
    else refresh();
    doc.addEventListener("visibilitychange", () => doc.hidden || refresh(true));
  }
})();
