// Drives the official Node SDKs (OpenAI, Anthropic, Google) and the Vercel AI SDK through a
// Switchyard sidecar, each with its defaults and only its base URL pointed at the sidecar.
//
//   node clients.mjs http://127.0.0.1:4000 via-openai
//
// Prints one JSON line: [{name, ok, detail | error}] for every case.
import OpenAI from "openai";
import Anthropic from "@anthropic-ai/sdk";
import { GoogleGenAI } from "@google/genai";
import { generateText, streamText, generateObject, tool, stepCountIs } from "ai";
import { createOpenAI } from "@ai-sdk/openai";
import { createAnthropic } from "@ai-sdk/anthropic";
import { createGoogleGenerativeAI } from "@ai-sdk/google";
import { z } from "zod";

const [url, model] = process.argv.slice(2);
const results = [];

async function check(name, run) {
  try {
    results.push({ name, ok: true, detail: await run() });
  } catch (e) {
    results.push({ name, ok: false, error: String(e?.stack || e).slice(0, 1500) });
  }
}

function must(condition, what) {
  if (!condition) throw new Error(what);
}

const key = "sk-never-used";
const openai = new OpenAI({ baseURL: `${url}/v1`, apiKey: key, maxRetries: 0 });
const anthropic = new Anthropic({ baseURL: url, apiKey: key, maxRetries: 0 });
// The Google SDK calls the stable API (`/v1/models/...`) by default.
const google = new GoogleGenAI({ apiKey: key, httpOptions: { baseUrl: url } });
const weather = {
  name: "get_weather",
  description: "The weather in a city",
  parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] },
};

await check("openai chat", async () => {
  const r = await openai.chat.completions.create({ model, messages: [{ role: "user", content: "Say hi" }] });
  must(r.choices[0].message.content === "Say hi", `content ${r.choices[0].message.content}`);
  must(r.usage.prompt_tokens > 0, "usage");
  return r.choices[0].message.content;
});
await check("openai chat stream with usage", async () => {
  const stream = await openai.chat.completions.create({
    model, stream: true, stream_options: { include_usage: true }, messages: [{ role: "user", content: "Say hi" }],
  });
  let text = "", usage;
  for await (const chunk of stream) {
    text += chunk.choices[0]?.delta?.content || "";
    usage = chunk.usage || usage;
  }
  must(text === "Say hi", `text ${text}`);
  must(usage?.completion_tokens > 0, "usage");
  return text;
});
await check("openai chat tools", async () => {
  const r = await openai.chat.completions.create({
    model, tools: [{ type: "function", function: weather }], messages: [{ role: "user", content: "Weather in Paris?" }],
  });
  const calls = r.choices[0].message.tool_calls || [];
  must(calls[0]?.function.name === "get_weather", "no tool call");
  must(r.choices[0].finish_reason === "tool_calls", r.choices[0].finish_reason);
  return JSON.parse(calls[0].function.arguments);
});
await check("openai responses", async () => {
  const r = await openai.responses.create({ model, input: "Say hi" });
  must(r.output_text === "Say hi", `output_text ${r.output_text}`);
  return r.output_text;
});
await check("openai responses stream", async () => {
  const stream = await openai.responses.create({ model, input: "Say hi", stream: true });
  let text = "", completed;
  for await (const e of stream) {
    if (e.type === "response.output_text.delta") text += e.delta;
    if (e.type === "response.completed") completed = e.response;
  }
  must(text === "Say hi" && completed?.status === "completed", `text ${text}`);
  return text;
});
await check("anthropic message", async () => {
  const r = await anthropic.messages.create({ model, max_tokens: 100, messages: [{ role: "user", content: "Say hi" }] });
  must(r.content[0]?.text === "Say hi", JSON.stringify(r.content));
  must(r.usage.input_tokens > 0, "usage");
  return r.content[0].text;
});
await check("anthropic stream", async () => {
  const m = await anthropic.messages
    .stream({ model, max_tokens: 100, messages: [{ role: "user", content: "Say hi" }] })
    .finalMessage();
  must(m.content[0]?.text === "Say hi", JSON.stringify(m.content));
  return m.content[0].text;
});
await check("anthropic tools", async () => {
  const r = await anthropic.messages.create({
    model, max_tokens: 100, messages: [{ role: "user", content: "Weather in Paris?" }],
    tools: [{ name: weather.name, description: weather.description, input_schema: weather.parameters }],
  });
  must(r.stop_reason === "tool_use", r.stop_reason);
  return r.content.find((b) => b.type === "tool_use").input;
});
await check("google generateContent", async () => {
  const r = await google.models.generateContent({ model, contents: "Say hi" });
  must(r.text === "Say hi", `text ${r.text}`);
  return r.text;
});
await check("google generateContentStream", async () => {
  let text = "";
  for await (const chunk of await google.models.generateContentStream({ model, contents: "Say hi" })) {
    text += chunk.text || "";
  }
  must(text === "Say hi", `text ${text}`);
  return text;
});
await check("google response schema", async () => {
  const r = await google.models.generateContent({
    model, contents: "A city",
    config: {
      responseMimeType: "application/json",
      responseSchema: { type: "OBJECT", properties: { city: { type: "STRING" } }, required: ["city"] },
    },
  });
  must(typeof JSON.parse(r.text).city === "string", `text ${r.text}`);
  return JSON.parse(r.text);
});

// The Vercel AI SDK through each of its providers: OpenAI's (Responses API by default, and
// chat completions), Anthropic's and Google's.
const ai = {
  "openai responses": createOpenAI({ baseURL: `${url}/v1`, apiKey: key })(model),
  "openai chat": createOpenAI({ baseURL: `${url}/v1`, apiKey: key }).chat(model),
  anthropic: createAnthropic({ baseURL: `${url}/v1`, apiKey: key })(model),
  google: createGoogleGenerativeAI({ baseURL: `${url}/v1beta`, apiKey: key })(model),
};
for (const [provider, m] of Object.entries(ai)) {
  await check(`ai ${provider} generateText`, async () => {
    const r = await generateText({ model: m, prompt: "Say hi", maxRetries: 0, maxOutputTokens: 100 });
    must(r.text === "Say hi", `text ${r.text}`);
    must(r.usage.inputTokens > 0, "usage");
    return r.text;
  });
  await check(`ai ${provider} streamText`, async () => {
    const r = streamText({ model: m, prompt: "Say hi", maxRetries: 0, maxOutputTokens: 100, onError: () => {} });
    let text = "";
    for await (const t of r.textStream) text += t;
    must(text === "Say hi", `text ${text}`);
    must((await r.usage).outputTokens > 0, "usage");
    return text;
  });
  await check(`ai ${provider} generateObject`, async () => {
    const r = await generateObject({
      model: m, prompt: "A city", maxRetries: 0, maxOutputTokens: 100,
      schema: z.object({ city: z.string(), population: z.number() }),
    });
    must(typeof r.object.city === "string" && typeof r.object.population === "number", "object");
    return r.object;
  });
  await check(`ai ${provider} tool loop`, async () => {
    const r = await generateText({
      model: m, prompt: "Weather in Paris?", maxRetries: 0, maxOutputTokens: 100, stopWhen: stepCountIs(3),
      tools: {
        get_weather: tool({
          description: weather.description,
          inputSchema: z.object({ city: z.string() }),
          execute: async ({ city }) => ({ city, celsius: 21 }),
        }),
      },
    });
    must(r.steps[0].toolCalls[0]?.toolName === "get_weather", "no tool call");
    must(r.steps.length === 2 && r.text.includes("21"), `steps ${r.steps.length}: ${r.text}`);
    return r.text;
  });
}

console.log(JSON.stringify(results));
