import { Testing } from "cdktf";
import { FoobarStack } from "./constructs";
import { DEFAULT_SETTINGS } from "./settings";
const json = JSON.parse(Testing.synth(new FoobarStack(Testing.app(), "t", DEFAULT_SETTINGS)));
for (const d of Object.values(json.resource.digitalocean_droplet) as any[]) console.log(d.name, Buffer.byteLength(d.user_data));
