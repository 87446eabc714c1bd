// One text, a client batch and a refused request through the types generated from docs/openapi.yaml
// (api.d.ts, written next to this file by `make clients`) and openapi-fetch. Prints what it read as
// one JSON line, so tests/integration/test_generated_clients.py can compare it with the server's answers.
//
//   node dist/ner.js BASE_URL MODEL TEXT TEXT...
import createClient from "openapi-fetch";
import type { components, paths } from "./api.js";

type Schemas = components["schemas"];
type Answer = Schemas["PredictResponse"];
type Span = Pick<Schemas["Entity"], "type" | "text" | "start" | "end">;

function isPrediction(answer: Answer): answer is Schemas["Prediction"] {
  return !Array.isArray(answer) && "entities" in answer;
}

function isBatch(answer: Answer): answer is Schemas["BatchPrediction"] {
  return !Array.isArray(answer) && "results" in answer;
}

function spans(entities: Schemas["Entity"][]): Span[] {
  return entities.map(({ type, text, start, end }) => ({ type, text, start, end }));
}

// The types refuse what the contract refuses: an option it does not list, a text that is not a string.
// @ts-expect-error unknown option
const unknownOption: Schemas["TextRequest"] = { text: "", options: { colour: "red" } };
// @ts-expect-error text must be a string
const notText: Schemas["TextRequest"] = { text: 1 };
void [unknownOption, notText];

async function main(): Promise<void> {
  const [baseUrl, model, first, ...rest] = process.argv.slice(2);
  if (baseUrl === undefined || model === undefined || first === undefined) {
    throw new Error("usage: node dist/ner.js BASE_URL MODEL TEXT [TEXT...]");
  }
  const client = createClient<paths>({ baseUrl });
  const params = { path: { model } };

  const one = await client.POST("/predictions/{model}", {
    params,
    body: { text: first, options: { aggregation: "max" } },
  });
  if (one.data === undefined || !isPrediction(one.data)) {
    throw new Error(`one text: HTTP ${one.response.status}`);
  }

  const batch = await client.POST("/predictions/{model}", {
    params,
    body: { texts: [first, ...rest], options: { offsets: "utf16" } },
  });
  if (batch.data === undefined || !isBatch(batch.data)) {
    throw new Error(`client batch: HTTP ${batch.response.status}`);
  }

  const refused = await client.POST("/predictions/{model}", {
    params,
    body: { text: first, options: { min_score: 2 } },
  });
  if (refused.error === undefined) {
    throw new Error(`min_score 2 was not refused: HTTP ${refused.response.status}`);
  }
  const error: Schemas["Error"] = refused.error;

  console.log(
    JSON.stringify({
      one: { model: one.data.model, entities: spans(one.data.entities) },
      batch: batch.data.results.map((result) => spans(result.entities)),
      error: { status: refused.response.status, code: error.code, type: error.type, message: error.message },
    }),
  );
}

await main();
