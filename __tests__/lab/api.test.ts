import { apiAnswer, apiDelayMs, ApiServerConfig, ApiState } from "../../lab/emulations/api";
import { dropletMetadata, metadataAnswer, withReservedIp } from "../../lab/emulations/metadata";
import type { LabDroplet, LabStack } from "../../lab/emulations/terraform";

const TOKEN = `dop_v1_${"ab".repeat(32)}`;
const config: ApiServerConfig = {
  address: "198.51.100.5",
  port: 443,
  certFile: "/dev/null",
  keyFile: "/dev/null",
  token: TOKEN,
  delayMs: 1000,
  region: "nyc3",
  droplets: [
    { id: 100000001, name: "lb-01" },
    { id: 100000002, name: "lb-02" },
  ],
  reservedIps: ["198.51.100.200"],
  namespaces: [],
};
const now = new Date("2026-12-01T12:00:00Z");
const fresh = (): ApiState => ({ holders: { "198.51.100.200": "lb-01" }, actions: [] });
const assign = (state: ApiState, body: unknown, auth: string | undefined = `Bearer ${TOKEN}`, ip = "198.51.100.200") =>
  apiAnswer(config, state, "POST", `/v2/reserved_ips/${ip}/actions`, auth, JSON.stringify(body), now);
/** No Authorization header at all (a default parameter would fill `undefined` in). */
const NO_HEADER = "absent";

describe("the lab's DigitalOcean API answers as DigitalOcean documents it", () => {
  test("an assign is accepted with 201 and an in-progress action, and the move is left to after the delay", () => {
    const state = fresh();
    const answer = assign(state, { type: "assign", droplet_id: 100000002 });
    expect(answer.status).toBe(201);
    expect(answer.body).toEqual({
      action: expect.objectContaining({
        status: "in-progress",
        type: "assign_ip",
        resource_type: "reserved_ip",
        region_slug: "nyc3",
        completed_at: null,
      }),
    });
    expect(answer.move).toEqual({ actionId: expect.any(Number), ip: "198.51.100.200", droplet: "lb-02" });
    // Nothing moved yet: the server moves it once the delay has passed.
    expect(state.holders["198.51.100.200"]).toBe("lb-01");
  });

  test("the action can be read back, and a second action while one is pending is refused (422)", () => {
    const state = fresh();
    const first = assign(state, { type: "assign", droplet_id: 100000002 });
    const id = (first.body as { action: { id: number } }).action.id;
    expect(apiAnswer(config, state, "GET", `/v2/reserved_ips/198.51.100.200/actions/${id}`, `Bearer ${TOKEN}`, "", now).status).toBe(200);
    expect(assign(state, { type: "assign", droplet_id: 100000001 }).status).toBe(422);
  });

  test("GET /v2/reserved_ips/{ip} names the droplet holding it", () => {
    const answer = apiAnswer(config, fresh(), "GET", "/v2/reserved_ips/198.51.100.200", `Bearer ${TOKEN}`, "", now);
    expect(answer.body).toEqual({
      reserved_ip: { ip: "198.51.100.200", droplet: { id: 100000001, name: "lb-01" }, region: { slug: "nyc3" }, locked: false },
    });
  });

  test.each([
    ["no token", NO_HEADER, { type: "assign", droplet_id: 100000002 }, "198.51.100.200", 401],
    ["a wrong token", `Bearer dop_v1_${"0".repeat(64)}`, { type: "assign", droplet_id: 100000002 }, "198.51.100.200", 401],
    ["an unknown address", `Bearer ${TOKEN}`, { type: "assign", droplet_id: 100000002 }, "198.51.100.201", 404],
    ["an unknown droplet", `Bearer ${TOKEN}`, { type: "assign", droplet_id: 42 }, "198.51.100.200", 422],
    ["an unknown action type", `Bearer ${TOKEN}`, { type: "teleport" }, "198.51.100.200", 422],
  ])("refuses %s (%#) with the API's error shape", (_label, auth, body, ip, status) => {
    const state = fresh();
    const answer = apiAnswer(
      config,
      state,
      "POST",
      `/v2/reserved_ips/${ip}/actions`,
      auth === NO_HEADER ? undefined : auth,
      JSON.stringify(body),
      now,
    );
    expect(answer.status).toBe(status);
    expect(answer.body).toEqual({ id: expect.any(String), message: expect.any(String) });
    expect(answer.move).toBeUndefined();
    expect(state.actions).toEqual([]);
  });

  test("FOOBAR_LAB_API_DELAY_MS sets the delay; a bad value is one line", () => {
    expect(apiDelayMs({})).toBe(1000);
    expect(apiDelayMs({ FOOBAR_LAB_API_DELAY_MS: "2500" })).toBe(2500);
    expect(() => apiDelayMs({ FOOBAR_LAB_API_DELAY_MS: "soon" })).toThrow(
      /^FOOBAR_LAB_API_DELAY_MS must be a whole number of milliseconds from 0 to 60000, got "soon"$/,
    );
  });
});

describe("the metadata service tells a droplet whether it holds a reserved IP", () => {
  const lb = {
    name: "lb-02",
    id: "100000002",
    publicIpv4: "198.51.100.11",
    privateIpv4: "10.10.10.3",
    tags: [],
    userData: "",
    region: "nyc3",
  } as unknown as LabDroplet;
  const stack = { vpc: { ipRange: "10.10.10.0/24" }, droplets: [lb] } as unknown as LabStack;
  const base = dropletMetadata(stack, lb, 24);

  test("inactive until it holds one", () => {
    expect(metadataAnswer(base, "GET", "/metadata/v1/reserved_ip/ipv4/active").body).toBe("false");
    expect(metadataAnswer(base, "GET", "/metadata/v1/reserved_ip/ipv4/ip_address").status).toBe(404);
  });

  test("active, with its address, while it holds one (and the older floating_ip says the same)", () => {
    const held = withReservedIp(base, "198.51.100.200");
    expect(metadataAnswer(held, "GET", "/metadata/v1/reserved_ip/ipv4/active").body).toBe("true");
    expect(metadataAnswer(held, "GET", "/metadata/v1/reserved_ip/ipv4/ip_address").body).toBe("198.51.100.200");
    expect(metadataAnswer(held, "GET", "/metadata/v1/floating_ip/ipv4/active").body).toBe("true");
    expect(JSON.parse(metadataAnswer(held, "GET", "/metadata/v1.json").body).reserved_ip).toEqual({
      ipv4: { active: true, ip_address: "198.51.100.200" },
    });
  });
});
