// Drives the reference server with Langflow's official TypeScript client
// (@datastax/langflow-client), as a Langflow user would, and prints what it
// saw as one JSON object for TestLangflowClient to check.
//
//   node client.mjs BASE_URL FLOW_ID CLI_KEY USERNAME PASSWORD
import { LangflowClient } from "@datastax/langflow-client";
import { LangflowError } from "@datastax/langflow-client/errors";

const [baseUrl, flowId, cliKey, username, password] = process.argv.slice(2);

// Keeps the last JSON body the client received, to read keyflow's "fields".
let lastBody;
const recordingFetch = async (url, init) => {
  const res = await fetch(url, init);
  if ((res.headers.get("content-type") || "").startsWith("application/json")) {
    lastBody = await res.clone().json();
  }
  return res;
};

async function scenario(apiKey) {
  const client = new LangflowClient({ baseUrl, apiKey, fetch: recordingFetch });
  const flow = client.flow(flowId);
  const out = {};

  const run = await flow.run("hello from node");
  out.text = run.chatOutputText();
  out.sessionId = run.sessionId;

  const tweaked = await flow.tweak("Echo", { api_key: "a-tweaked-literal" }).run("tweaked", { session_id: "node-session" });
  out.tweakText = tweaked.chatOutputText();
  out.tweakSessionId = tweaked.sessionId;
  out.tweakSource = lastBody?.fields?.api_key?.source;
  out.tweakBodyHasLiteral = JSON.stringify(lastBody).includes("a-tweaked-literal");

  const byName = await client.flow("echo").run("by endpoint name");
  out.byNameText = byName.chatOutputText();

  const events = [];
  let end;
  for await (const ev of await flow.stream("streamed")) {
    events.push(ev.event);
    if (ev.event === "end") end = ev.data.result;
  }
  out.streamEvents = events;
  out.streamEndText = end?.outputs?.[0]?.outputs?.[0]?.outputs?.message?.message;
  return out;
}

async function wrongKey() {
  const client = new LangflowClient({ baseUrl, apiKey: "sk-not-a-valid-key-but-long-enough-to-look-like-one" });
  try {
    await client.flow(flowId).run("x");
    return { resolved: true };
  } catch (err) {
    return { isLangflowError: err instanceof LangflowError, status: err.cause?.status };
  }
}

// A key made the way a user with auto-login off makes one: log in with a
// username and password, then create a key with the access token.
async function keyAfterLogin() {
  const login = await fetch(`${baseUrl}/api/v1/login`, {
    method: "POST",
    body: new URLSearchParams({ username, password }),
  });
  if (!login.ok) throw new Error(`login: ${login.status} ${await login.text()}`);
  const { access_token: token, token_type: type } = await login.json();
  const created = await fetch(`${baseUrl}/api/v1/api_key/`, {
    method: "POST",
    headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" },
    body: JSON.stringify({ name: "from node" }),
  });
  if (!created.ok) throw new Error(`create key: ${created.status} ${await created.text()}`);
  return { tokenType: type, key: (await created.json()).api_key };
}

const result = { cli: await scenario(cliKey), wrongKey: await wrongKey() };
const login = await keyAfterLogin();
result.login = { tokenType: login.tokenType, ...(await scenario(login.key)) };
console.log(JSON.stringify(result));
