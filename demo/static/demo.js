// ja-ner demo page: sends the text to POST {api}/predictions/{model} and highlights the answer.
// Plain JavaScript, no build step, nothing fetched but config.json and the API itself.
"use strict";

const TYPES = [
  ["PER", "person"], ["ORG", "company"], ["ORG-P", "political organisation"], ["ORG-O", "other organisation"],
  ["LOC", "place"], ["INS", "facility"], ["PRD", "product"], ["EVT", "event"],
];

const EXAMPLES = {
  widget: ["Widget sentence", "鈴木は4月の陽気の良い日に、鈴をつけて熊本県の阿蘇山に登った"],
  news: ["News", "政府は15日、首相官邸で経済財政諮問会議を開き、トヨタ自動車や日本製鉄の経営者と賃上げについて意見を交わした。" +
    "会議の後、岸田文雄首相は記者団に「地方の中小企業にも広げたい」と語った。大阪府の吉村洋文知事も同日、府庁で会見した。"],
  wiki: ["Wikipedia-like", "夏目漱石は、日本の小説家、英文学者である。東京帝国大学で英文学を学んだ後、愛媛県の松山中学や熊本の第五高等学校で教え、" +
    "イギリスに留学した。帰国後は朝日新聞社に入社し、『吾輩は猫である』や『こころ』を発表した。"],
  long: ["Long (several paragraphs)", [
    "株式会社日立製作所は、東京都千代田区に本社を置く日本の電機メーカーである。1910年に小平浪平が茨城県の日立鉱山で創業した。",
    "同社は鉄道車両の製造でも知られ、英国の都市間高速鉄道計画向けに車両を納入した。ロンドンのキングス・クロス駅では、その車両が毎日発着している。",
    "2021年の東京オリンピックでは、国立競技場の設備工事の一部を請け負った。大会の開会式には菅義偉首相やトーマス・バッハ会長が出席した。",
    "一方、自由民主党と立憲民主党は、エネルギー政策をめぐって国会で論戦を続けている。経済産業省は原子力発電所の再稼働について見解を示した。",
    "京都大学の研究チームは、iPS細胞を使った新しい治療法を開発したと発表した。研究を率いた山中伸弥教授は、ノーベル生理学・医学賞を受賞している。",
    "週末には、北海道の札幌市で雪まつりが開かれ、国内外から多くの観光客が訪れた。会場の大通公園には、巨大な雪像が並んだ。",
    "ソニーグループは新型のゲーム機を発表し、任天堂のNintendo Switchとの競争が激しくなると見られている。",
    "鈴木は4月の陽気の良い日に、鈴をつけて熊本県の阿蘇山に登った。山頂からは九州の山々が見渡せた。",
  ].join("\n\n")],
};

const $ = (id) => document.getElementById(id);
const config = { api: "http://127.0.0.1:8080", model: "ja_ner" };

async function loadConfig() {
  try {
    const resp = await fetch("config.json", { cache: "no-store" });
    if (resp.ok) Object.assign(config, await resp.json());
  } catch (err) {
    // Opened as a file or from another server: keep the defaults.
  }
  const params = new URLSearchParams(location.search);
  if (params.get("api")) config.api = params.get("api").replace(/\/+$/, "");
  if (params.get("model")) config.model = params.get("model");
  $("api").textContent = config.api;
  $("model").textContent = config.model;
}

function requestBody(text) {
  // utf16: start/end in JavaScript string units, so an astral character (𠮷, emoji) counts 2.
  const options = { aggregation: $("aggregation").value, offsets: "utf16" };
  const minScore = $("min-score").value.trim();
  if (minScore !== "") options.min_score = Number(minScore);
  return { text, options };
}

function describeError(status, body) {
  const message = body && typeof body.message === "string" ? body.message : "";
  switch (status) {
    case 400:
      return `The server could not use this request (400): ${message || "bad input"}.`;
    case 404:
      return `The server has no model named "${config.model}" (404). ${message}`;
    case 413:
      return message
        ? `The text is too long for the server (413): ${message}.`
        : "The request is larger than the server accepts (413, its max_request_size).";
    case 503:
      return `The model is not ready to answer (503): no worker is up yet, or it failed on this batch. Try again in a moment. ${message}`;
    default:
      return `The server answered ${status}${message ? `: ${message}` : ""}.`;
  }
}

function showError(text) {
  const el = $("error");
  el.textContent = text;
  el.hidden = false;
}

function clearResult() {
  $("error").hidden = true;
  $("error").textContent = "";
  $("output").replaceChildren();
  $("raw").textContent = "";
  renderLegend([]);
}

function renderEntities(text, entities) {
  const out = $("output");
  const parts = [];
  let pos = 0;
  for (const e of [...entities].sort((a, b) => a.start - b.start)) {
    if (e.start < pos) continue; // never happens: the service returns non-overlapping entities
    if (e.start > pos) parts.push(document.createTextNode(text.slice(pos, e.start)));
    const mark = document.createElement("mark");
    mark.className = "ent";
    mark.dataset.type = e.type;
    mark.dataset.start = String(e.start);
    mark.dataset.end = String(e.end);
    mark.title = `${e.type} · score ${e.score.toFixed(3)}`;
    const span = document.createElement("span");
    span.className = "ent-text";
    span.textContent = text.slice(e.start, e.end);
    const label = document.createElement("span");
    label.className = "ent-label";
    label.textContent = e.type;
    mark.append(span, label);
    parts.push(mark);
    pos = e.end;
  }
  if (pos < text.length) parts.push(document.createTextNode(text.slice(pos)));
  out.replaceChildren(...parts);
}

function renderLegend(entities) {
  const counts = Object.fromEntries(TYPES.map(([t]) => [t, 0]));
  for (const e of entities) counts[e.type] = (counts[e.type] || 0) + 1;
  const items = TYPES.map(([type, name]) => {
    const li = document.createElement("li");
    li.dataset.type = type;
    if (!counts[type]) li.className = "none";
    const swatch = document.createElement("span");
    swatch.className = "swatch";
    const count = document.createElement("span");
    count.className = "count";
    count.textContent = String(counts[type]);
    li.append(swatch, `${type} ${name}`, count);
    return li;
  });
  $("legend").replaceChildren(...items);
}

let running = false;

async function analyse() {
  if (running) return;
  const text = $("text").value;
  clearResult();
  if (!text.trim()) {
    showError("Type or paste some Japanese text first.");
    return;
  }
  running = true;
  $("run").disabled = true;
  $("status").textContent = "Asking the model…";
  const url = `${config.api}/predictions/${encodeURIComponent(config.model)}`;
  const started = performance.now();
  try {
    let resp;
    try {
      resp = await fetch(url, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify(requestBody(text)),
      });
    } catch (err) {
      $("status").textContent = "";
      showError(`Cannot reach the NER server at ${config.api}. Is it running? Start it with "make serve" ` +
        `(and check that its cors_allowed_origin is ${location.origin}).`);
      return;
    }
    const raw = await resp.text();
    const ms = performance.now() - started;
    let body = null;
    try {
      body = JSON.parse(raw);
    } catch (err) {
      body = null;
    }
    $("raw").textContent = body ? JSON.stringify(body, null, 2) : raw || "(empty body)";
    $("status").textContent = `HTTP ${resp.status} in ${ms.toFixed(0)} ms`;
    $("status").dataset.ms = ms.toFixed(1);
    if (!resp.ok) {
      showError(describeError(resp.status, body));
      return;
    }
    const entities = (body && body.entities) || [];
    renderEntities(text, entities);
    renderLegend(entities);
    $("status").textContent = `${entities.length} entities · ${ms.toFixed(0)} ms (request time) · ${text.length} characters`;
  } finally {
    running = false;
    $("run").disabled = false;
  }
}

function setup() {
  const menu = $("example");
  for (const [key, [label]] of Object.entries(EXAMPLES)) {
    const option = document.createElement("option");
    option.value = key;
    option.textContent = label;
    menu.append(option);
  }
  menu.addEventListener("change", () => {
    if (EXAMPLES[menu.value]) $("text").value = EXAMPLES[menu.value][1];
  });
  $("text").value = EXAMPLES.widget[1];
  $("run").addEventListener("click", analyse);
  $("text").addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
      event.preventDefault();
      analyse();
    }
  });
  renderLegend([]);
  document.body.dataset.ready = "true";
}

loadConfig().then(setup);
