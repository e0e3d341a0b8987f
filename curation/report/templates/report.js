// videorft run report: renders one page of the samples table at a time and a sample's detail view
// only when it is opened (location hash "#sample=<id>"), so a large report opens quickly.
// Everything it shows comes from the JSON blob the build embedded; it fetches nothing.
(function () {
  "use strict";

  var t0 = performance.now();  // the HTML (data blob included) is parsed when this runs
  var DATA = JSON.parse(document.getElementById("report-data").textContent);
  var t1 = performance.now();
  var SAMPLES = DATA.samples;
  var THUMBS = DATA.thumbs;
  var PAGE_SIZE = 50;
  var byId = new Map();
  SAMPLES.forEach(function (s, i) { byId.set(s.id, i); });

  // reason: {stage, reason, status} set by clicking a reason in the summary (null: any reason).
  var state = { q: "", filters: {}, reason: null, page: 0, rows: [], current: null };
  var $ = function (id) { return document.getElementById(id); };
  var rowsEl = $("rows");
  var pagerEl = $("pager");
  var countEl = $("count");
  var detailEl = $("detail");
  var detailBody = $("detail-body");

  var ESC = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };
  function esc(v) { return String(v == null ? "" : v).replace(/[&<>"']/g, function (c) { return ESC[c]; }); }
  function badge(status) { return '<span class="badge st-' + esc(status || "none") + '">' + esc(status || "–") + "</span>"; }
  function fmtTime(t) {
    // Frame times are seconds from the extractor; caption times are "HH:MM:SS" text written by the
    // model (shown as written: the number the model used is what the draft will quote).
    if (t == null || t === "") return "";
    if (typeof t !== "number") return String(t);
    var m = Math.floor(t / 60), s = t - 60 * m;
    return m + ":" + (s < 10 ? "0" : "") + s.toFixed(1);
  }
  function fmtNum(v) {
    if (typeof v !== "number") return esc(v);
    return Number.isInteger(v) ? v.toLocaleString("en-US") : v.toFixed(3).replace(/0+$/, "").replace(/\.$/, "");
  }
  function img(idx, cls) {
    return idx == null ? '<span class="' + cls + ' missing" title="no thumbnail"></span>'
      : '<img class="' + cls + '" src="' + THUMBS[idx] + '" alt="frame" decoding="async">';
  }

  // ---- table -----------------------------------------------------------------------------
  function haystack(s) {
    if (!s._hay) {
      s._hay = [s.id, s.problem, s.solution, s.reason, s.data_source, s.problem_type, s.media_path,
        s.answer, s.draft_answer, (s.options || []).join(" ")].join("\n").toLowerCase();
    }
    return s._hay;
  }

  function reasonMatch(s, r) {
    // A step name matches every reason it gave ("length" matches "length: too short").
    if (s.stopped_at !== r.stage) return false;
    if (r.status && s.status !== r.status) return false;
    if (r.reason === "*") return true;
    return s.reason === r.reason || s.reason.indexOf(r.reason + ":") === 0;
  }

  function applyFilters() {
    var terms = state.q.toLowerCase().split(/\s+/).filter(Boolean);
    var keys = Object.keys(state.filters).filter(function (k) { return state.filters[k]; });
    state.rows = [];
    for (var i = 0; i < SAMPLES.length; i++) {
      var s = SAMPLES[i], keep = !state.reason || reasonMatch(s, state.reason);
      for (var k = 0; k < keys.length && keep; k++) {
        keep = (s[keys[k]] || "(none)") === state.filters[keys[k]];
      }
      if (keep && terms.length) {
        var h = haystack(s);
        keep = terms.every(function (t) { return h.indexOf(t) !== -1; });
      }
      if (keep) state.rows.push(i);
    }
    state.page = 0;
    renderTable();
  }

  function rowHtml(s) {
    var thumbs = s.thumbs.map(function (t) { return img(t, "thumb"); }).join("");
    if (!thumbs) thumbs = '<span class="muted">' + (s.n_frames ? "no thumbnail" : "no frames") + "</span>";
    return '<tr data-id="' + esc(s.id) + '">' +
      '<td><div class="frames-cell">' + thumbs + "</div></td>" +
      '<td class="q"><div class="qtext">' + esc(s.problem) + '</div><div class="qid">' + esc(s.id) + "</div></td>" +
      "<td>" + esc(s.problem_type) + "</td>" +
      "<td>" + esc(s.data_source) + "</td>" +
      "<td>" + badge(s.status) + "</td>" +
      '<td class="stage-name">' + esc(s.stopped_at) + "</td>" +
      '<td class="reason-cell">' + esc(s.reason) + "</td></tr>";
  }

  function renderTable() {
    var n = state.rows.length;
    var pages = Math.max(1, Math.ceil(n / PAGE_SIZE));
    state.page = Math.min(state.page, pages - 1);
    var start = state.page * PAGE_SIZE;
    var slice = state.rows.slice(start, start + PAGE_SIZE);
    rowsEl.innerHTML = slice.length
      ? slice.map(function (i) { return rowHtml(SAMPLES[i]); }).join("")
      : '<tr><td colspan="7" class="empty">No sample matches these filters.</td></tr>';
    countEl.textContent = n === SAMPLES.length ? n + " samples" : n + " of " + SAMPLES.length + " samples";
    pagerEl.innerHTML = n <= PAGE_SIZE ? "" :
      '<span>' + (start + 1) + "–" + Math.min(n, start + PAGE_SIZE) + " of " + n + "</span>" +
      '<button class="btn" data-page="-1"' + (state.page === 0 ? " disabled" : "") + ">‹ Prev</button>" +
      '<span>page ' + (state.page + 1) + " / " + pages + "</span>" +
      '<button class="btn" data-page="1"' + (state.page >= pages - 1 ? " disabled" : "") + ">Next ›</button>";
  }

  // ---- detail view -------------------------------------------------------------------------
  function section(title, body, extra) {
    return '<div class="card"' + (extra || "") + "><h3>" + esc(title) + "</h3>" + body + "</div>";
  }

  function valueHtml(v) {
    if (v == null) return "";
    if (Array.isArray(v)) return v.map(valueHtml).join(", ");
    if (typeof v === "object") return esc(JSON.stringify(v));
    return typeof v === "number" ? fmtNum(v) : esc(v);
  }

  function captionHtml(s) {
    var c = s.caption;
    if (c == null) return section("Caption", '<p class="empty">No caption (the sample stopped before captioning).</p>');
    if (typeof c !== "object") return section("Caption", '<pre class="json">' + esc(c) + "</pre>");
    var body = c.video_caption ? '<p>' + esc(c.video_caption) + "</p>" : "";
    var frames = Array.isArray(c.frames) ? c.frames : [];
    if (frames.length) {
      // Each per-frame caption beside the frame it describes (matched at build time).
      body += '<table class="caption-table" id="caption-frames"><thead><tr><th>frame</th><th>time</th><th>caption</th><th>key elements</th></tr></thead><tbody>' +
        frames.map(function (f, i) {
          var fr = (s.caption_frames || [])[i] || [null, null];
          var ke = f.key_elements && typeof f.key_elements === "object"
            ? Object.keys(f.key_elements).filter(function (k) {
                var v = f.key_elements[k];
                return v != null && v !== "" && !(Array.isArray(v) && !v.length);
              }).map(function (k) {
                return "<span><b>" + esc(k) + ":</b> " + valueHtml(f.key_elements[k]) + "</span>";
              }).join("")
            : valueHtml(f.key_elements);
          var at = fr[1] != null ? '<div class="muted" title="time of the extracted frame">frame ' + esc(fmtTime(fr[1])) + "</div>" : "";
          return '<tr class="cap-row"><td class="cap-frame">' + img(fr[0], "thumb") + '</td><td class="t">' + esc(fmtTime(f.timestamp)) + at +
            "</td><td>" + esc(f.caption) + '</td><td><div class="ke">' + ke + "</div></td></tr>";
        }).join("") + "</tbody></table>";
    }
    body += '<details><summary>Structured caption JSON</summary><pre class="json">' +
      esc(JSON.stringify(c, null, 2)) + "</pre></details>";
    return section("Frames and captions", body);
  }

  function diffHtml(s) {
    if (!s.diff) {
      if (!s.draft_text && !s.revised_text) return section("Chain of thought", '<p class="empty">No draft yet.</p>');
      return section("Chain of thought", '<div class="diff">' +
        '<div class="side"><h4>Draft</h4>' + (esc(s.draft_text) || '<span class="empty">none</span>') + "</div>" +
        '<div class="side"><h4>Revision</h4>' + (esc(s.revised_text) || '<span class="empty">not revised</span>') + "</div></div>");
    }
    var left = "", right = "";
    s.diff.forEach(function (seg) {
      var op = seg[0], t = esc(seg[1]);
      if (op === "=") { left += t; right += t; }
      else if (op === "-") left += "<del>" + t + "</del>";
      else right += "<ins>" + t + "</ins>";
    });
    var st = s.diff_stats || {};
    var stats = '<div class="diff-stats">word-level diff: <del>−' + fmtNum(st.removed) + "</del> removed · <ins>+" +
      fmtNum(st.added) + "</ins> added · " + fmtNum(st.kept) + " kept (" + Math.round(100 * (st.kept_ratio || 0)) +
      "% of the draft)</div>";
    return section("Chain of thought: draft ↔ revision", stats + '<div class="diff" id="cot-diff">' +
      '<div class="side side-draft"><h4>Draft (reasoning LLM)</h4>' + left + "</div>" +
      '<div class="side side-revision"><h4>Revision (VLM, with frames)</h4>' + right + "</div></div>" +
      (s.reasoning ? "<details><summary>Draft model reasoning (" + fmtNum(s.reasoning_chars) + " chars" +
        (s.reasoning_chars > s.reasoning.length ? ", first " + fmtNum(s.reasoning.length) + " shown" : "") +
        ')</summary><div class="side" style="white-space:pre-wrap">' + esc(s.reasoning) + "</div></details>" : ""));
  }

  function filterHtml(s) {
    var v = s.verdicts || {}, sc = s.scores || {};
    var steps = Object.keys(v);
    Object.keys(sc).forEach(function (k) { if (steps.indexOf(k) === -1) steps.push(k); });
    if (!steps.length) return section("Filter", '<p class="empty">Not filtered.</p>');
    return section("Filter verdicts and scores", '<table class="scores"><thead><tr><th>step</th><th>verdict</th><th>reason</th><th>scores</th></tr></thead><tbody>' +
      steps.map(function (k) {
        var verdict = v[k] || {}, scores = sc[k];
        var kept = verdict.kept === true ? '<span class="kept-yes">kept</span>'
          : verdict.kept === false ? '<span class="kept-no">dropped</span>' : "";
        var sHtml = scores && typeof scores === "object" && !Array.isArray(scores)
          ? Object.keys(scores).map(function (n) { return '<span class="score">' + esc(n) + "=" + valueHtml(scores[n]) + "</span>"; }).join("")
          : '<span class="score">' + valueHtml(scores) + "</span>";
        return '<tr><td class="stage-name">' + esc(k) + "</td><td>" + kept + "</td><td>" + esc(verdict.reason || "") +
          "</td><td>" + sHtml + "</td></tr>";
      }).join("") + "</tbody></table>");
  }

  function metaHtml(s) {
    var parts = [];
    if (s.video) {
      var v = s.video;
      parts.push('<div class="kv-inline">' +
        [["duration", v.duration != null ? fmtNum(v.duration) + " s" : ""], ["fps", fmtNum(v.fps)],
         ["frames", fmtNum(v.frame_count)], ["size", v.width ? v.width + "×" + v.height : ""],
         ["codec", esc(v.codec)], ["reader", esc(v.reader)], ["media", esc(s.media_path)]]
          .filter(function (p) { return p[1]; })
          .map(function (p) { return "<span><b>" + p[0] + "</b>" + p[1] + "</span>"; }).join("") + "</div>");
    }
    var llm = Object.keys(s.llm || {});
    if (llm.length) {
      parts.push('<table class="scores" style="margin-top:10px"><thead><tr><th>stage</th><th>model</th><th class="n">requests</th><th class="n">cache hits</th><th class="n">prompt</th><th class="n">completion</th><th class="n">reasoning</th></tr></thead><tbody>' +
        llm.map(function (k) {
          var r = s.llm[k];
          return '<tr><td class="stage-name">' + esc(k) + '</td><td class="mono">' + esc(r.model) + '</td><td class="n">' + fmtNum(r.requests) +
            '</td><td class="n">' + fmtNum(r.cache_hits) + '</td><td class="n">' + fmtNum(r.prompt_tokens) + '</td><td class="n">' +
            fmtNum(r.completion_tokens) + '</td><td class="n">' + fmtNum(r.reasoning_tokens) + "</td></tr>";
        }).join("") + "</tbody></table>");
    }
    return parts.length ? section("Video and models", parts.join("")) : "";
  }

  function detailHtml(s) {
    var pipeline = s.stages.map(function (st) {
      return '<span class="step"><b class="stage-name">' + esc(st[0]) + "</b>" + badge(st[1]) +
        (st[2] ? '<span class="r">' + esc(st[2]) + "</span>" : "") + "</span>";
    }).join('<span class="arrow">→</span>');
    var answers = [["ground truth", s.solution], ["draft answer", s.draft_answer], ["revised answer", s.answer]]
      .filter(function (a) { return a[1]; })
      .map(function (a) { return '<div class="answer"><div class="lbl">' + a[0] + '</div><div class="val">' + esc(a[1]) + "</div></div>"; })
      .join("");
    var frames = s.frames.length
      ? '<div class="frames-grid" id="detail-frames">' + s.frames.map(function (f) {
          return "<figure>" + img(f[0], "thumb") + "<figcaption>" + esc(fmtTime(f[1])) + "</figcaption></figure>";
        }).join("") + "</div>" +
        (s.n_frames > s.frames.length ? '<p class="note">' + s.frames.length + " of " + s.n_frames + " extracted frames shown.</p>" : "")
      : '<p class="empty">No frames extracted.</p>';
    return '<div class="d-head">' + badge(s.status) +
      '<div><h2 id="detail-title">Sample <span class="mono">' + esc(s.id) + "</span></h2>" +
      '<div class="sub">' + esc([s.data_source, s.problem_type, s.data_type].filter(Boolean).join(" · ")) +
      (s.stopped_at ? " · stopped at " + esc(s.stopped_at) : "") + (s.reason ? " · " + esc(s.reason) : "") + "</div></div>" +
      '<div class="d-nav"><button class="btn" data-step="-1" title="previous (←)">‹</button>' +
      '<button class="btn" data-step="1" title="next (→)">›</button>' +
      '<button class="btn" data-close title="close (Esc)">✕ Close</button></div></div>' +
      '<div class="d-body">' +
      section("Question", '<p class="question">' + esc(s.problem) + "</p>" +
        (s.options && s.options.length ? '<ul class="options">' + s.options.map(function (o) { return "<li>" + esc(o) + "</li>"; }).join("") + "</ul>" : "") +
        '<div class="answers">' + answers + "</div>") +
      section("Pipeline", '<div class="pipeline">' + pipeline + "</div>") +
      section("Frames", frames) +
      diffHtml(s) + filterHtml(s) + captionHtml(s) + metaHtml(s) +
      "</div>";
  }

  function openDetail(id) {
    var i = byId.get(id);
    if (i === undefined) { closeDetail(); return; }
    state.current = i;
    detailBody.innerHTML = detailHtml(SAMPLES[i]);
    detailEl.hidden = false;
    detailEl.querySelector(".drawer").scrollTop = 0;
    document.body.classList.add("noscroll");
  }

  function closeDetail() {
    state.current = null;
    detailEl.hidden = true;
    detailBody.innerHTML = "";
    document.body.classList.remove("noscroll");
  }

  function showReason(r) {
    state.reason = r;
    $("reason-chip").hidden = !r;
    if (r) $("reason-chip-text").textContent = r.stage + (r.status ? " · " + r.status : "") + (r.reason && r.reason !== "*" ? ": " + r.reason : "");
  }

  function applyHashFilter(params) {
    // "#filter:stage=filter&reason=length" (a step or a reason of the summary) or
    // "#filter:data_source=x&status=rejected" (a cell of the source table): links anyone can share.
    var stage = params.get("stage");
    showReason(stage ? { stage: stage, reason: params.get("reason") || "", status: params.get("status") || "" } : null);
    state.filters = {};
    ["status", "data_source", "problem_type"].forEach(function (k) {
      if (!stage && params.get(k)) state.filters[k] = params.get(k);
    });
    Array.prototype.forEach.call(document.querySelectorAll("#filters select"), function (sel) {
      sel.value = state.filters[sel.dataset.field] || "";
    });
    applyFilters();
    document.getElementById("samples").scrollIntoView();
  }

  function dropHash() { history.replaceState(null, "", location.pathname + location.search); }

  function route() {
    var m = /^#sample=(.+)$/.exec(location.hash);
    var f = /^#filter:(.*)$/.exec(location.hash);
    if (m) { openDetail(decodeURIComponent(m[1])); return; }
    if (state.current !== null) closeDetail();
    if (f) applyHashFilter(new URLSearchParams(f[1]));
  }

  function go(id) { location.hash = "sample=" + encodeURIComponent(id); }

  function step(delta) {
    // Prev/next walk the filtered rows, so a reviewer can page through e.g. only failures.
    var pos = state.rows.indexOf(state.current);
    var next = state.rows[pos + delta];
    if (next !== undefined) go(SAMPLES[next].id);
  }

  function dismiss() {
    // Drop the hash without adding a history entry, keeping the scroll position.
    history.replaceState(null, "", location.pathname + location.search);
    closeDetail();
  }

  // ---- wiring -------------------------------------------------------------------------------
  var searchTimer = null;
  $("q").addEventListener("input", function (e) {
    clearTimeout(searchTimer);
    searchTimer = setTimeout(function () { state.q = e.target.value; applyFilters(); }, 120);
  });
  Array.prototype.forEach.call(document.querySelectorAll("#filters select"), function (sel) {
    sel.addEventListener("change", function () { state.filters[sel.dataset.field] = sel.value; applyFilters(); });
  });
  $("reason-clear").addEventListener("click", function () { dropHash(); showReason(null); applyFilters(); });
  $("reset").addEventListener("click", function () {
    dropHash();
    $("q").value = ""; state.q = ""; state.filters = {}; showReason(null);
    Array.prototype.forEach.call(document.querySelectorAll("#filters select"), function (sel) { sel.value = ""; });
    applyFilters();
  });
  rowsEl.addEventListener("click", function (e) {
    var tr = e.target.closest("tr[data-id]");
    if (tr) go(tr.dataset.id);
  });
  pagerEl.addEventListener("click", function (e) {
    var b = e.target.closest("button[data-page]");
    if (!b || b.disabled) return;
    state.page += Number(b.dataset.page);
    renderTable();
    document.getElementById("samples").scrollIntoView();
  });
  detailEl.addEventListener("click", function (e) {
    if (e.target.closest("[data-close]")) dismiss();
    var b = e.target.closest("button[data-step]");
    if (b) step(Number(b.dataset.step));
  });
  document.addEventListener("keydown", function (e) {
    if (state.current === null) return;
    if (e.key === "Escape") dismiss();
    else if (e.key === "ArrowRight") step(1);
    else if (e.key === "ArrowLeft") step(-1);
  });
  window.addEventListener("hashchange", route);

  applyFilters();
  route();
  // Timings since navigation start, read from the DOM by the benchmark: HTML parsed, data parsed,
  // page usable (first table page rendered).
  document.body.setAttribute("data-html-ms", t0.toFixed(1));
  document.body.setAttribute("data-json-ms", t1.toFixed(1));
  document.body.setAttribute("data-ready-ms", performance.now().toFixed(1));
})();
