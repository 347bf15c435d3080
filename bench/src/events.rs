//! Realistic events: a Python traceback (library frames, then in-app frames whose last
//! function names the group), a message with varying numbers and ids (which the server
//! normalises), a few tags, release, environment and user.
//!
//! The grouping key is built from the in-app frames (module or file basename + function), so
//! an event's group is decided by `handle_<run>_g<group>` alone: every run makes new groups.

use std::collections::HashMap;

use faultline::pb;
use rand::{Rng, seq::IndexedRandom};
use serde::Serialize;

/// 200 words for searchable messages. None of them occurs in the traceback template, so a
/// one-word search hits only events whose message carries it.
pub const WORDS: [&str; 200] = [
    "avalanche",
    "bagpipe",
    "cactus",
    "dolphin",
    "eclipse",
    "falcon",
    "glacier",
    "harbor",
    "igloo",
    "jasmine",
    "kayak",
    "lantern",
    "meadow",
    "nebula",
    "orchid",
    "pelican",
    "quartz",
    "raven",
    "sapphire",
    "tundra",
    "umbrella",
    "volcano",
    "walrus",
    "xylophone",
    "yonder",
    "zephyr",
    "acorn",
    "blizzard",
    "canyon",
    "dune",
    "ember",
    "fjord",
    "geyser",
    "hickory",
    "iris",
    "juniper",
    "kelp",
    "lagoon",
    "marble",
    "nutmeg",
    "oasis",
    "prairie",
    "quill",
    "reef",
    "saffron",
    "thistle",
    "urchin",
    "velvet",
    "willow",
    "yarrow",
    "almond",
    "beacon",
    "cobalt",
    "delta",
    "elm",
    "fern",
    "granite",
    "hazel",
    "indigo",
    "jade",
    "kestrel",
    "lilac",
    "maple",
    "nectar",
    "onyx",
    "pebble",
    "quince",
    "rosemary",
    "sequoia",
    "tulip",
    "upland",
    "vortex",
    "wren",
    "yew",
    "zinnia",
    "amber",
    "birch",
    "cedar",
    "dahlia",
    "egret",
    "fable",
    "garnet",
    "heron",
    "ivory",
    "jetty",
    "kiwi",
    "lotus",
    "mango",
    "nimbus",
    "opal",
    "parsley",
    "quokka",
    "ripple",
    "sorrel",
    "topaz",
    "ultramarine",
    "vanilla",
    "wisteria",
    "yak",
    "zenith",
    "anchor",
    "bramble",
    "cinder",
    "driftwood",
    "estuary",
    "flint",
    "gorse",
    "heather",
    "inlet",
    "jubilee",
    "knoll",
    "lichen",
    "mistral",
    "nettle",
    "otter",
    "plume",
    "quarry",
    "rampart",
    "sable",
    "tamarind",
    "unison",
    "vesper",
    "wharf",
    "yodel",
    "zodiac",
    "alpaca",
    "basalt",
    "cobble",
    "dervish",
    "ermine",
    "foxglove",
    "gazelle",
    "hamlet",
    "ibis",
    "jackal",
    "kumquat",
    "larch",
    "mosaic",
    "nomad",
    "obsidian",
    "paprika",
    "quagmire",
    "rhubarb",
    "scarab",
    "tapestry",
    "ukulele",
    "valley",
    "whimsy",
    "yucca",
    "zucchini",
    "apricot",
    "bonsai",
    "caramel",
    "dragonfly",
    "epoch",
    "flamingo",
    "gondola",
    "hyacinth",
    "iguana",
    "jigsaw",
    "koala",
    "limestone",
    "magpie",
    "nougat",
    "ostrich",
    "pagoda",
    "quiver",
    "rosewood",
    "saxophone",
    "turquoise",
    "umber",
    "verbena",
    "waffle",
    "yeti",
    "zebra",
    "armadillo",
    "buttercup",
    "chestnut",
    "daffodil",
    "emerald",
    "firefly",
    "gingko",
    "hummingbird",
    "icicle",
    "jellyfish",
    "kingfisher",
    "ladybug",
    "mulberry",
    "narwhal",
    "oregano",
    "peacock",
    "quicksand",
    "raspberry",
    "starfish",
    "toucan",
    "violet",
    "woodpecker",
    "yellowtail",
    "zircon",
    "coral",
];

const LIB_FRAMES: [(&str, &str, &str); 4] = [
    (
        "/usr/local/lib/python3.12/site-packages/gunicorn/workers/sync.py",
        "handle_request",
        "respiter = self.wsgi(environ, resp.start_response)",
    ),
    (
        "/usr/local/lib/python3.12/site-packages/django/core/handlers/wsgi.py",
        "__call__",
        "response = self.get_response(request)",
    ),
    (
        "/usr/local/lib/python3.12/site-packages/django/core/handlers/base.py",
        "_get_response",
        "response = wrapped_callback(request, *callback_args, **callback_kwargs)",
    ),
    (
        "/usr/local/lib/python3.12/site-packages/django/views/generic/base.py",
        "view",
        "return self.dispatch(request, *args, **kwargs)",
    ),
];

const ENVS: [&str; 3] = ["production", "staging", "canary"];
const REGIONS: [&str; 4] = ["us-east-1", "eu-west-1", "ap-south-1", "sa-east-1"];
const BROWSERS: [&str; 5] = ["chrome", "firefox", "safari", "edge", "opera"];
const EXC: [&str; 4] = ["ValueError", "KeyError", "RuntimeError", "PermissionError"];

/// How events look.
#[derive(Clone, Debug)]
pub struct Spec {
    /// Makes this run's groups new (it is part of the grouping function name).
    pub run_id: String,
    pub groups: usize,
    /// Total frames of the traceback.
    pub frames: usize,
    /// Start the traceback with 4 library (site-packages) frames, counted in `frames`.
    pub lib_frames: bool,
    /// Put three words of `WORDS` in each message (for search).
    pub words: bool,
}

/// One generated event, in the fields both APIs share.
#[derive(Clone, Debug, Serialize)]
pub struct Event {
    pub message: String,
    pub stack: String,
    pub tags: std::collections::BTreeMap<String, String>,
    pub release: String,
    pub environment: String,
    pub user_id: String,
    pub level: &'static str,
    /// RFC 3339; only set by `seed`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<String>,
    #[serde(skip)]
    pub timestamp_pb: Option<prost_types::Timestamp>,
}

impl Spec {
    /// An event of group `group` (taken modulo `groups`).
    pub fn event<R: Rng>(&self, rng: &mut R, group: usize) -> Event {
        let group = group % self.groups.max(1);
        let exc = EXC[group % EXC.len()];
        let order: u32 = rng.random_range(10_000..9_999_999);
        let ms: u32 = rng.random_range(5..30_000);
        let req = uuid::Uuid::from_u128(rng.random());
        let user: u32 = rng.random_range(1..50_000);
        let message = if self.words {
            let w: Vec<&str> = WORDS.choose_multiple(rng, 3).copied().collect();
            format!(
                "{} {} {}: order {order} failed for user {user} after {ms} ms (request {req})",
                w[0], w[1], w[2]
            )
        } else {
            format!(
                "Order {order} failed for user {user} after {ms} ms (request {req}, \
                 shard 0x{:x})",
                rng.random::<u32>()
            )
        };

        let mut stack = String::with_capacity(self.frames * 150 + 200);
        stack.push_str("Traceback (most recent call last):\n");
        let lib = if self.lib_frames {
            LIB_FRAMES.len().min(self.frames.saturating_sub(1))
        } else {
            0
        };
        for (file, func, src) in &LIB_FRAMES[..lib] {
            let line: u32 = rng.random_range(50..900);
            stack.push_str(&format!(
                "  File \"{file}\", line {line}, in {func}\n    {src}\n"
            ));
        }
        let app = self.frames.saturating_sub(lib).max(1);
        for k in 0..app {
            let line: u32 = rng.random_range(10..2_000);
            if k + 1 == app {
                stack.push_str(&format!(
                    "  File \"/srv/app/handlers/module_{k}.py\", line {line}, in handle_{}_g{group}\n    \
                     raise {exc}(f\"order {{order_id}} failed for user {{user.id}} after {{elapsed_ms}} ms\")\n",
                    self.run_id
                ));
            } else {
                stack.push_str(&format!(
                    "  File \"/srv/app/services/module_{k}.py\", line {line}, in func_{k}\n    \
                     result = func_{}(ctx, payload, deadline=ctx.deadline)\n",
                    k + 1
                ));
            }
        }
        stack.push_str(&format!("{exc}: {message}\n"));

        let mut tags = std::collections::BTreeMap::new();
        let env = ENVS[rng.random_range(0..ENVS.len())];
        tags.insert("env".to_owned(), env.to_owned());
        tags.insert(
            "region".to_owned(),
            REGIONS[rng.random_range(0..REGIONS.len())].to_owned(),
        );
        tags.insert(
            "browser".to_owned(),
            BROWSERS[rng.random_range(0..BROWSERS.len())].to_owned(),
        );
        Event {
            message,
            stack,
            tags,
            release: format!(
                "shop@2.{}.{}",
                rng.random_range(0..4),
                rng.random_range(0..10)
            ),
            environment: env.to_owned(),
            user_id: format!("user-{user}"),
            level: "error",
            timestamp: None,
            timestamp_pb: None,
        }
    }
}

impl Event {
    /// The REST capture body.
    pub fn json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("an event serialises")
    }

    /// The gRPC `CaptureRequest` with the same fields.
    pub fn pb(&self) -> pb::CaptureRequest {
        pb::CaptureRequest {
            message: self.message.clone(),
            stack: self.stack.clone(),
            tags: self
                .tags
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect::<HashMap<_, _>>(),
            level: pb::Level::Error as i32,
            release: self.release.clone(),
            environment: self.environment.clone(),
            user_id: self.user_id.clone(),
            timestamp: self.timestamp_pb,
            ..Default::default()
        }
    }
}

/// A short id for this run, e.g. `r3f9a1c2b`.
pub fn run_id() -> String {
    format!("r{}", &uuid::Uuid::new_v4().simple().to_string()[..8])
}
