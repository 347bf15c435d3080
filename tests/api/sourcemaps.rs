//! Source maps, as Sentry's release artifacts: a release's files uploaded over REST (the body
//! is the file, named by `?name=`) and gRPC, listed and deleted; an event of the release read
//! back with its minified frames placed in the original source (file, line, column, the
//! source line, and the original function name when the minified source is there too), the
//! frame as sent kept under `minified`. Events of another release, and frames no map covers,
//! stay as sent; a name ending in `.map` must hold a source map.

use faultline::pb::{self, release_service_client::ReleaseServiceClient};
use reqwest::Method;
use serde_json::{Value, json};
use sourcemap::SourceMapBuilder;

use crate::{helpers::*, sdk};

const MINIFIED: &str = "function n(r,t){return r.total/t}function o(r){return n(r,r.items.length)}";
const URL: &str = "https://shop.example/static/app.min.js";

/// A map of [`MINIFIED`] onto `src/cart.ts`, as a bundler writes one, with the sources'
/// contents.
pub(crate) fn map() -> Vec<u8> {
    let src = "webpack://shop/src/cart.ts";
    let mut b = SourceMapBuilder::new(Some("app.min.js"));
    let id = b.add_source(src);
    b.set_source_contents(
        id,
        Some(
            "// cart\nexport function average(cart, n) {\n  return cart.total / n;\n}\n\
             export function perItem(cart) {\n  return average(cart, cart.items.length);\n}\n",
        ),
    );
    // `function n(r,t){return r.total/t}` is lines 2-4; `function o(r){...}` lines 5-7.
    b.add(0, 0, 1, 7, Some(src), None, false);
    b.add(0, 9, 1, 16, Some(src), Some("average"), false);
    b.add(0, 16, 2, 2, Some(src), None, false);
    b.add(0, 23, 2, 9, Some(src), Some("cart"), false);
    b.add(0, 33, 4, 7, Some(src), None, false);
    b.add(0, 42, 4, 16, Some(src), Some("perItem"), false);
    b.add(0, 47, 5, 2, Some(src), None, false);
    b.add(0, 54, 5, 9, Some(src), Some("average"), false);
    let mut out = Vec::new();
    b.into_sourcemap().to_writer(&mut out).unwrap();
    out
}

async fn upload(app: &TestApp, release: &str, name: &str, body: Vec<u8>) -> Resp {
    let path = format!(
        "/v1/errors/releases/{}/files?name={}",
        enc(release),
        enc(name)
    );
    app.send(app.authed(Method::POST, &path).body(body)).await
}

/// A TypeError in `average`, called from `perItem`, as the browser reported it (oldest call
/// first), in `release`.
async fn capture(app: &TestApp, release: &str) -> String {
    let b = app
        .capture(json!({
            "release": release,
            "exception": {"type": "TypeError", "message": "r.items is undefined", "stacktrace": [
                {"filename": URL, "function": "o", "lineno": 1, "colno": 56},
                {"filename": format!("{URL}?v=3"), "function": "n", "lineno": 1, "colno": 24},
                {"filename": "https://cdn.example/vendor.js", "function": "x", "lineno": 1, "colno": 5},
            ]},
        }))
        .await;
    s(&b["event_id"])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn minified_frames_are_read_through_the_release_source_map() {
    let app = spawn_app().await;
    // Sent before the map was uploaded: mapped when read all the same.
    let early = capture(&app, "shop@2.0").await;

    let r = upload(&app, "shop@2.0", "~/static/app.min.js.map", map()).await;
    assert_eq!(r.status.as_u16(), 201, "{}", r.text);
    assert_eq!(r.body["name"], json!("~/static/app.min.js.map"));
    assert_eq!(r.body["release"], json!("shop@2.0"));
    assert_eq!(r.body["size"], json!(map().len()));

    let frames = |e: &Value| arr(&e["exception"]["frames"]).clone();
    let e = app.event(&early).await;
    let f = frames(&e);
    assert_eq!(f[1]["filename"], json!("webpack://shop/src/cart.ts"), "{e}");
    assert_eq!((&f[1]["lineno"], &f[1]["colno"]), (&json!(3), &json!(10)));
    assert_eq!(f[1]["context_line"], json!("  return cart.total / n;"));
    assert_eq!(f[1]["in_app"], json!(true));
    // Without the minified source the function keeps its minified name.
    assert_eq!(f[1]["function"], json!("n"));
    assert_eq!(
        f[1]["minified"],
        json!({"filename": format!("{URL}?v=3"), "function": "n", "module": "", "lineno": 1,
            "colno": 24, "in_app": true, "context_line": ""})
    );
    assert_eq!(f[0]["lineno"], json!(6), "{e}");
    assert_eq!(
        f[0]["context_line"],
        json!("  return average(cart, cart.items.length);")
    );
    // No map for the vendor file: as sent.
    assert_eq!(f[2]["filename"], json!("https://cdn.example/vendor.js"));
    assert!(f[2].get("minified").is_none(), "{e}");

    // With the minified source beside it, the functions get their original names (gRPC).
    let mut releases = ReleaseServiceClient::new(app.channel().await);
    let stored = releases
        .upload_release_file(app.req(pb::UploadReleaseFileRequest {
            release: "shop@2.0".into(),
            name: "~/static/app.min.js".into(),
            content: MINIFIED.as_bytes().to_vec(),
        }))
        .await
        .expect("UploadReleaseFile")
        .into_inner()
        .file
        .unwrap();
    let event = app
        .groups_client()
        .await
        .get_event(app.req(pb::GetEventRequest {
            event_id: early.clone(),
        }))
        .await
        .expect("GetEvent")
        .into_inner()
        .event
        .unwrap();
    let got = &event.exception.as_ref().unwrap().frames;
    assert_eq!(
        (got[0].function.as_str(), got[1].function.as_str()),
        ("perItem", "average")
    );
    assert_eq!(got[1].minified.as_ref().map(|m| m.colno), Some(24));

    // Another release's events are not mapped by this one's files.
    let other = capture(&app, "shop@2.1").await;
    let e = app.event(&other).await;
    assert_eq!(frames(&e)[1]["filename"], json!(format!("{URL}?v=3")));

    // Listed by name; uploading a name again replaces the file; deleted by id.
    let list = || {
        let path = format!("/v1/errors/releases/{}/files", enc("shop@2.0"));
        let app = &app;
        async move { arr(&app.get_ok(&path).await["files"]).clone() }
    };
    let files = list().await;
    let names: Vec<String> = files.iter().map(|f| s(&f["name"])).collect();
    assert_eq!(names, ["~/static/app.min.js", "~/static/app.min.js.map"]);
    let again = upload(
        &app,
        "shop@2.0",
        "~/static/app.min.js",
        b"function n(){}".to_vec(),
    )
    .await;
    assert_eq!(again.status.as_u16(), 201, "{}", again.text);
    let files = list().await;
    assert_eq!(files.len(), 2);
    assert_eq!(files[0]["size"], json!(14));
    assert_ne!(s(&files[0]["id"]), stored.id);
    let path = format!(
        "/v1/errors/releases/{}/files/{}",
        enc("shop@2.0"),
        s(&files[1]["id"])
    );
    let r = app.send(app.authed(Method::DELETE, &path)).await;
    assert_eq!(r.status.as_u16(), 200, "{}", r.text);
    let r = app.send(app.authed(Method::DELETE, &path)).await;
    assert_error(&r, 404, "NOT_FOUND", "DELETE", &path);
    let e = app.event(&early).await;
    assert_eq!(
        frames(&e)[1]["filename"],
        json!(format!("{URL}?v=3")),
        "map gone: {e}"
    );

    // Larger than the server's usual body limit (1 MiB): a real bundle fits.
    let big = upload(
        &app,
        "shop@big",
        "~/static/vendor.min.js",
        vec![b'x'; 3 << 20],
    )
    .await;
    assert_eq!(big.status.as_u16(), 201, "{}", big.text);
    assert_eq!(big.body["size"], json!(3 << 20));

    // Refused by field: a `.map` that is no source map, no name.
    let r = upload(&app, "shop@2.0", "~/static/x.js.map", b"{not json".to_vec()).await;
    let path = format!("/v1/errors/releases/{}/files", enc("shop@2.0"));
    assert_error(&r, 422, "VALIDATION_ERROR", "POST", &path);
    assert!(r.text.contains("INVALID_SOURCEMAP"), "{}", r.text);
    let r = app.send(app.authed(Method::POST, &path).body(map())).await;
    assert_error(&r, 422, "VALIDATION_ERROR", "POST", &path);
    assert!(r.text.contains("\"name\""), "{}", r.text);
}

/// The same code built again: other minified names, the same positions (so [`map`] maps it
/// too), as a redeploy's bundle under a new hashed file name.
const MINIFIED_AGAIN: &str =
    "function a(e,i){return e.total/i}function b(e){return a(e,e.items.length)}";
const URL_AGAIN: &str = "https://shop.example/static/app.4b1c9e.min.js";

/// Uploads [`map`] and `minified` as the release's files for the minified file at `url`.
async fn upload_build(app: &TestApp, release: &str, url: &str, minified: &str) {
    let path = &url[url.find("/static").unwrap()..];
    for (name, body) in [
        (format!("~{path}.map"), map()),
        (format!("~{path}"), minified.as_bytes().to_vec()),
    ] {
        let r = upload(app, release, &name, body).await;
        assert_eq!(r.status.as_u16(), 201, "{}", r.text);
    }
}

/// The TypeError of [`capture`] in `release`, thrown by the build at `url` whose minified
/// functions are `outer` and `inner`: (event id, group id). With `as_text` the stack comes as
/// the browser's `error.stack` text.
async fn capture_build(
    app: &TestApp,
    release: &str,
    url: &str,
    (outer, inner): (&str, &str),
    as_text: bool,
) -> (String, String) {
    let stacktrace = if as_text {
        json!(format!(
            "TypeError: r.items is undefined\n    at {inner} ({url}:1:24)\n    at {outer} ({url}:1:56)"
        ))
    } else {
        json!([
            {"filename": url, "function": outer, "lineno": 1, "colno": 56},
            {"filename": url, "function": inner, "lineno": 1, "colno": 24},
        ])
    };
    let b = app
        .capture(json!({
            "release": release,
            "platform": "javascript",
            "exception": {"type": "TypeError", "message": "r.items is undefined",
                "stacktrace": stacktrace},
        }))
        .await;
    (s(&b["event_id"]), s(&b["group_id"]))
}

/// An event of a release whose maps are stored is placed in the original source when it
/// arrives, as in Sentry: two builds of the same code (other minified names, another hashed
/// file) group as one issue, the culprit names the original function, and the stored frames
/// are the original ones, the frames as sent kept under `minified`. A release without maps
/// groups by the minified frames.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_arrive_placed_and_group_by_the_original_source() {
    let app = spawn_app().await;
    upload_build(&app, "shop@4.0", URL, MINIFIED).await;
    upload_build(&app, "shop@4.1", URL_AGAIN, MINIFIED_AGAIN).await;

    let (first, group) = capture_build(&app, "shop@4.0", URL, ("o", "n"), false).await;
    let (_, again) = capture_build(&app, "shop@4.1", URL_AGAIN, ("b", "a"), false).await;
    let (text, from_text) = capture_build(&app, "shop@4.1", URL_AGAIN, ("b", "a"), true).await;
    assert_eq!(again, group, "a redeploy's event joins the issue");
    assert_eq!(from_text, group, "a stack sent as text is placed too");
    let (_, unmapped) = capture_build(&app, "shop@4.2", URL_AGAIN, ("b", "a"), false).await;
    assert_ne!(unmapped, group, "without maps the minified frames group");

    let g = app.group(&group).await;
    assert_eq!(g["count"], json!(3), "{g}");
    assert!(s(&g["culprit"]).contains("average"), "{g}");
    let e = app.event(&first).await;
    let f = arr(&e["exception"]["frames"]);
    assert_eq!(
        (&f[0]["function"], &f[1]["function"]),
        (&json!("perItem"), &json!("average")),
        "{e}"
    );
    assert_eq!(f[1]["filename"], json!("webpack://shop/src/cart.ts"));
    assert_eq!(f[1]["module"], json!(""));
    assert_eq!(f[1]["minified"]["function"], json!("n"));
    assert_eq!(f[1]["minified"]["filename"], json!(URL));

    // Stored placed: the release's files deleted, the frames stay as they arrived.
    let path = format!("/v1/errors/releases/{}/files", enc("shop@4.1"));
    for file in arr(&app.get_ok(&path).await["files"]).clone() {
        let r = app
            .send(app.authed(Method::DELETE, &format!("{path}/{}", s(&file["id"]))))
            .await;
        assert_eq!(r.status.as_u16(), 200, "{}", r.text);
    }
    let e = app.event(&text).await;
    let f = arr(&e["exception"]["frames"]);
    assert_eq!(f.len(), 2, "{e}");
    assert_eq!(f[0]["function"], json!("perItem"), "{e}");
    assert_eq!(f[0]["minified"]["function"], json!("b"), "{e}");
    // And the next event of that release, its maps gone, is minified again.
    let (_, later) = capture_build(&app, "shop@4.1", URL_AGAIN, ("b", "a"), false).await;
    assert_eq!(later, unmapped);
}

/// A Node app that loads a bundle and reports what its export throws, with `@sentry/node`.
const NODE_BUNDLE_APP: &str = r#"
const Sentry = require('@sentry/node');
const [dsn, bundle, release] = process.argv.slice(2);
Sentry.init({ dsn, release });
const perItem = require(bundle);
async function main() {
  let id;
  try { perItem({ total: 3 }); } catch (e) { id = Sentry.captureException(e); }
  await Sentry.flush(30000);
  console.log(JSON.stringify({ id }));
}
main();
"#;

/// Runs [`NODE_BUNDLE_APP`] on `bundle` (in `release`, if any); the stored event in full.
async fn node_bundle_event(app: &TestApp, bundle: &str, release: Option<&str>) -> Value {
    let dsn = s(&app.get_ok("/v1/settings/dsn").await["dsn"]);
    let mut args = vec![dsn.as_str(), bundle];
    args.extend(release);
    let run = sdk::node_script(NODE_BUNDLE_APP, &args).await;
    assert!(run.success, "node failed:\n{}\n{}", run.stdout, run.stderr);
    let id = s(&run.json()["id"]);
    for e in app.list_all("").await {
        let e = app.event(&s(&e["id"])).await;
        if e["payload"]["event_id"].as_str() == Some(id.as_str()) {
            return e;
        }
    }
    panic!("event {id} did not arrive")
}

/// A Node app throws from a minified bundle and reports it with the real `@sentry/node`; its
/// source map uploaded for the release, and the same again for a redeploy with other minified
/// names, both events are one issue in the original source.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_sdk_events_from_two_builds_are_one_issue() {
    let app = spawn_app().await;
    let mut groups = Vec::new();
    for (release, minified, maps) in [
        ("node@1", MINIFIED, true),
        ("node@2", MINIFIED_AGAIN, true),
        ("node@3", MINIFIED_AGAIN, false),
    ] {
        let dist = tempfile::tempdir().unwrap();
        let bundle = dist.path().join("app.min.js");
        let exported = &minified[minified.rfind("function ").unwrap() + 9..][..1];
        std::fs::write(&bundle, format!("{minified}\nmodule.exports={exported};\n")).unwrap();
        let bundle = bundle.to_str().unwrap().to_owned();
        if maps {
            for (name, body) in [
                (format!("{bundle}.map"), map()),
                (bundle.clone(), std::fs::read(&bundle).unwrap()),
            ] {
                let r = upload(&app, release, &name, body).await;
                assert_eq!(r.status.as_u16(), 201, "{}", r.text);
            }
        }
        let e = node_bundle_event(&app, &bundle, Some(release)).await;
        let frames = arr(&e["exception"]["frames"]);
        let newest = frames.last().unwrap();
        if maps {
            assert_eq!(newest["function"], json!("perItem"), "{e}");
            assert_eq!(
                newest["filename"],
                json!("webpack://shop/src/cart.ts"),
                "{e}"
            );
            assert_eq!(newest["minified"]["filename"], json!(bundle), "{e}");
        } else {
            assert_eq!(newest["filename"], json!(bundle), "{e}");
        }
        groups.push(s(&e["group_id"]));
    }
    assert_eq!(groups[0], groups[1], "two builds, one issue");
    assert_ne!(
        groups[0], groups[2],
        "no maps: grouped by the minified bundle"
    );
}

/// Runs `<cli> sourcemaps upload --release shop@3.0 --url-prefix ~/static <dist>` against
/// `app` (its own config and home out of the way); what it printed.
async fn upload_with_sentry_cli(
    app: &TestApp,
    cli: &std::path::Path,
    dist: &std::path::Path,
) -> String {
    run_sentry_cli(
        app,
        cli,
        &[
            "sourcemaps",
            "upload",
            "--release",
            "shop@3.0",
            "--url-prefix",
            "~/static",
        ],
        dist,
    )
    .await
}

/// Runs `<cli> <args> <dist>` against `app`; what it printed. It must succeed.
async fn run_sentry_cli(
    app: &TestApp,
    cli: &std::path::Path,
    args: &[&str],
    dist: &std::path::Path,
) -> String {
    let out = tokio::process::Command::new(cli)
        .args(args)
        .arg(dist)
        .env("SENTRY_URL", &app.base_url)
        .env("SENTRY_AUTH_TOKEN", &app.key)
        .env("SENTRY_ORG", "faultline")
        .env("SENTRY_PROJECT", "default")
        .env("SENTRY_LOAD_DOTENV", "0")
        .env("HOME", dist)
        .output()
        .await
        .unwrap_or_else(|e| panic!("run {}: {e}", cli.display()));
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(
        out.status.success(),
        "sentry-cli failed:\n{stdout}\n{stderr}"
    );
    stdout.into_owned()
}

/// A real sentry-cli uploads a build's minified file and map (`sentry-cli sourcemaps upload
/// --release … --url-prefix '~/static' dist`, the command the bundler plugins run); an event
/// of the release is then read in the original source, and a second run (a redeploy) replaces
/// the files. `upload_type` is how that CLI sent them.
async fn sentry_cli_uploads_source_maps(cli: std::path::PathBuf, upload_type: &str) {
    let app = spawn_app().await;
    let dist = tempfile::tempdir().unwrap();
    std::fs::write(
        dist.path().join("app.min.js"),
        format!("{MINIFIED}\n//# sourceMappingURL=app.min.js.map\n"),
    )
    .unwrap();
    std::fs::write(dist.path().join("app.min.js.map"), map()).unwrap();
    let stdout = upload_with_sentry_cli(&app, &cli, dist.path()).await;
    assert!(stdout.contains("~/static/app.min.js.map"), "{stdout}");
    assert!(stdout.contains(upload_type), "{stdout}");

    let list = || {
        let app = &app;
        async move {
            let files = app
                .get_ok(&format!("/v1/errors/releases/{}/files", enc("shop@3.0")))
                .await;
            let mut names: Vec<String> =
                arr(&files["files"]).iter().map(|f| s(&f["name"])).collect();
            names.sort();
            names
        }
    };
    assert_eq!(
        list().await,
        ["~/static/app.min.js", "~/static/app.min.js.map"]
    );

    let event = capture(&app, "shop@3.0").await;
    let e = app.event(&event).await;
    let f = arr(&e["exception"]["frames"]).clone();
    assert_eq!(f[1]["filename"], json!("webpack://shop/src/cart.ts"), "{e}");
    assert_eq!(f[1]["function"], json!("average"), "{e}");
    assert_eq!(f[0]["function"], json!("perItem"), "{e}");

    upload_with_sentry_cli(&app, &cli, dist.path()).await;
    assert_eq!(list().await.len(), 2, "replaced, not doubled");
}

/// sentry-cli 2 finds no chunked upload of release files and uses Sentry's release-file API.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sentry_cli_2_uploads_release_files() {
    sentry_cli_uploads_source_maps(sdk::sentry_cli_2(), "single file/legacy upload").await;
}

/// sentry-cli 3 uploads an artifact bundle in chunks and has it assembled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sentry_cli_3_uploads_an_artifact_bundle() {
    sentry_cli_uploads_source_maps(sdk::sentry_cli_3(), "artifact bundle").await;
}

/// The build flow Sentry documents now: `sentry-cli sourcemaps inject dist` writes a debug id
/// into the bundle and its map, `sentry-cli sourcemaps upload dist` uploads them without a
/// release, and the SDK reports each file's debug id in the event's `debug_meta`. A real
/// `@sentry/node` app, with no release set, throws from the injected bundle: its event arrives
/// placed by the map its debug id names. Another build (other contents, so another debug id)
/// whose files were not uploaded stays minified, until they are: then reading the event places
/// it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sentry_cli_3_debug_ids_place_events_without_a_release() {
    let app = spawn_app().await;
    let cli = sdk::sentry_cli_3();
    let mut newest = Vec::new();
    let mut last = None;
    for (minified, exported, upload) in [(MINIFIED, "o", true), (MINIFIED_AGAIN, "b", false)] {
        let dist = tempfile::tempdir().unwrap();
        let bundle = dist.path().join("app.min.js");
        std::fs::write(
            &bundle,
            format!(
                "{minified}\nmodule.exports={exported};\n//# sourceMappingURL=app.min.js.map\n"
            ),
        )
        .unwrap();
        std::fs::write(dist.path().join("app.min.js.map"), map()).unwrap();
        let injected = run_sentry_cli(&app, &cli, &["sourcemaps", "inject"], dist.path()).await;
        assert!(injected.contains("app.min.js.map"), "{injected}");
        if upload {
            let out = run_sentry_cli(&app, &cli, &["sourcemaps", "upload"], dist.path()).await;
            assert!(out.contains("artifact bundle"), "{out}");
        }
        let bundle = bundle.to_str().unwrap().to_owned();
        let e = node_bundle_event(&app, &bundle, None).await;
        assert_eq!(e["release"], json!(""), "{e}");
        assert!(
            e["payload"]["debug_meta"]["images"][0]["debug_id"].is_string(),
            "the SDK reports the debug id: {e}"
        );
        let frames = arr(&e["exception"]["frames"]);
        newest.push(frames.last().unwrap().clone());
        last = Some((dist, s(&e["id"])));
    }
    assert_eq!(newest[0]["function"], json!("perItem"), "{newest:?}");
    assert_eq!(newest[0]["filename"], json!("webpack://shop/src/cart.ts"));
    assert!(
        newest[0]["minified"]["filename"]
            .as_str()
            .is_some_and(|f| f.ends_with("app.min.js"))
    );
    assert_eq!(
        newest[1]["function"],
        json!("b"),
        "not uploaded: {newest:?}"
    );
    let (dist, event) = last.unwrap();
    run_sentry_cli(&app, &cli, &["sourcemaps", "upload"], dist.path()).await;
    let e = app.event(&event).await;
    let frames = arr(&e["exception"]["frames"]);
    assert_eq!(
        frames.last().unwrap()["function"],
        json!("perItem"),
        "placed when read: {e}"
    );
}

/// A bundle put together over gRPC, as sentry-cli does it over REST: its chunks stored by
/// SHA-1; assembly says which are missing, refuses chunks that do not add up to the bundle's
/// SHA-1 and a bundle without a release, then stores the files the manifest lists and drops
/// the chunks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn artifact_bundles_are_assembled_from_chunks() {
    let app = spawn_app().await;
    let mut releases = ReleaseServiceClient::new(app.channel().await);
    let mut zip = std::io::Cursor::new(Vec::new());
    {
        let mut w = zip::ZipWriter::new(&mut zip);
        let options = zip::write::SimpleFileOptions::default();
        w.start_file("manifest.json", options).unwrap();
        std::io::Write::write_all(
            &mut w,
            br#"{"files": {"files/_/_/app.min.js.map": {"url": "~/static/app.min.js.map", "type": "source_map"}}}"#,
        )
        .unwrap();
        w.start_file("files/_/_/app.min.js.map", options).unwrap();
        std::io::Write::write_all(&mut w, &map()).unwrap();
        w.finish().unwrap();
    }
    let bundle = zip.into_inner();
    let sha1 = |b: &[u8]| hex::encode(<sha1::Sha1 as sha1::Digest>::digest(b));
    let (first, second) = bundle.split_at(bundle.len() / 2);
    let chunks = vec![sha1(first), sha1(second)];
    let assemble = |chunks: Vec<String>, release: &str| pb::AssembleBundleRequest {
        checksum: sha1(&bundle),
        chunks,
        release: release.into(),
    };

    let r = releases
        .assemble_bundle(app.req(assemble(chunks.clone(), "shop@4.0")))
        .await
        .expect("AssembleBundle")
        .into_inner();
    assert_eq!(
        (r.state.as_str(), r.missing_chunks.clone()),
        ("not_found", chunks.clone())
    );

    let stored = releases
        .upload_chunks(app.req(pb::UploadChunksRequest {
            chunks: vec![first.to_vec(), second.to_vec()],
        }))
        .await
        .expect("UploadChunks")
        .into_inner()
        .checksums;
    assert_eq!(stored, chunks);

    let swapped = vec![chunks[1].clone(), chunks[0].clone()];
    let r = releases
        .assemble_bundle(app.req(assemble(swapped, "shop@4.0")))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.state, "error");
    assert!(r.detail.contains("SHA-1"), "{}", r.detail);
    let r = releases
        .assemble_bundle(app.req(assemble(chunks.clone(), "")))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.state, "error");
    assert!(r.detail.contains("--release"), "{}", r.detail);

    let r = releases
        .assemble_bundle(app.req(assemble(chunks.clone(), "shop@4.0")))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.state, "ok", "{}", r.detail);
    let names: Vec<&str> = r.files.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(names, ["~/static/app.min.js.map"]);
    assert_eq!(r.files[0].size, map().len() as u64);
    assert!(r.debug_ids.is_empty(), "no debug id in this bundle");
    // The chunks went with the assembly.
    let r = releases
        .assemble_bundle(app.req(assemble(chunks.clone(), "shop@4.0")))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.state, "not_found");
}

/// Uploads of one name at once (two CI jobs deploying the same build) all succeed and leave one
/// file; so do chunk uploads of one bundle at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_uploads_of_one_name_leave_one_file() {
    let app = spawn_app().await;
    let uploads = (0..8).map(|_| upload(&app, "shop@5.0", "~/static/app.min.js.map", map()));
    for r in futures::future::join_all(uploads).await {
        assert_eq!(r.status.as_u16(), 201, "{}", r.text);
    }
    let files = app
        .get_ok(&format!("/v1/errors/releases/{}/files", enc("shop@5.0")))
        .await;
    assert_eq!(arr(&files["files"]).len(), 1, "{files}");

    let chunks = (0..8).map(|_| {
        let app = &app;
        async move {
            ReleaseServiceClient::new(app.channel().await)
                .upload_chunks(app.req(pb::UploadChunksRequest {
                    chunks: vec![map()],
                }))
                .await
        }
    });
    for r in futures::future::join_all(chunks).await {
        r.expect("UploadChunks");
    }
}

/// An artifact bundle as sentry-cli builds one: a zip of `files` (URL, type, debug id,
/// contents) and the `manifest.json` listing them.
pub(crate) fn bundle_zip(files: &[(&str, &str, Option<&str>, &[u8])]) -> Vec<u8> {
    let mut manifest = serde_json::Map::new();
    for (i, (url, kind, debug_id, _)) in files.iter().enumerate() {
        let headers = match debug_id {
            Some(id) => json!({"debug-id": id}),
            None => json!({}),
        };
        manifest.insert(
            format!("files/_/_/{i}"),
            json!({"url": url, "type": kind, "headers": headers}),
        );
    }
    let mut zip = std::io::Cursor::new(Vec::new());
    {
        let mut w = zip::ZipWriter::new(&mut zip);
        let options = zip::write::SimpleFileOptions::default();
        w.start_file("manifest.json", options).unwrap();
        std::io::Write::write_all(&mut w, json!({ "files": manifest }).to_string().as_bytes())
            .unwrap();
        for (i, (_, _, _, content)) in files.iter().enumerate() {
            w.start_file(format!("files/_/_/{i}"), options).unwrap();
            std::io::Write::write_all(&mut w, content).unwrap();
        }
        w.finish().unwrap();
    }
    zip.into_inner()
}

/// The map of [`MINIFIED`] and [`MINIFIED`] itself, both under `debug_id`, as `sentry-cli
/// sourcemaps inject` marks a build (`~/static/{name}.min.js`).
pub(crate) fn debug_id_bundle(debug_id: &str, name: &str) -> Vec<u8> {
    let map = map();
    bundle_zip(&[
        (
            &format!("~/static/{name}.min.js.map"),
            "source_map",
            Some(debug_id),
            &map,
        ),
        (
            &format!("~/static/{name}.min.js"),
            "minified_source",
            Some(debug_id),
            MINIFIED.as_bytes(),
        ),
    ])
}

/// Uploads `zip` as one chunk and has it assembled, over gRPC with the admin key (for
/// `release`; by debug id only when it is empty).
pub(crate) async fn assemble(
    app: &TestApp,
    zip: &[u8],
    release: &str,
) -> pb::AssembleBundleResponse {
    let mut releases = ReleaseServiceClient::new(app.channel().await);
    let chunk = hex::encode(<sha1::Sha1 as sha1::Digest>::digest(zip));
    releases
        .upload_chunks(app.req(pb::UploadChunksRequest {
            chunks: vec![zip.to_vec()],
        }))
        .await
        .expect("UploadChunks");
    let r = releases
        .assemble_bundle(app.req(pb::AssembleBundleRequest {
            checksum: chunk.clone(),
            chunks: vec![chunk],
            release: release.into(),
        }))
        .await
        .expect("AssembleBundle")
        .into_inner();
    assert_eq!(r.state, "ok", "{}", r.detail);
    r
}

/// The files stored by debug id (`query`: the listing's query string), walked page by page.
async fn debug_files(app: &TestApp, query: &str) -> Vec<Value> {
    let mut out = Vec::new();
    let mut cursor = String::new();
    loop {
        let page = app
            .get_ok(&format!(
                "/v1/errors/debug-files?limit=1&{query}&cursor={cursor}"
            ))
            .await;
        out.extend(arr(&page["files"]).iter().cloned());
        match page["next_cursor"].as_str() {
            Some(c) => cursor = enc(c),
            None => return out,
        }
    }
}

/// A Sentry SDK's event from a build marked with `debug_id`: thrown in `average`, called from
/// `perItem`, in the minified `url`.
fn sentry_event_with_debug_id(url: &str, debug_id: &str) -> Value {
    json!({
        "event_id": uuid::Uuid::new_v4().simple().to_string(),
        "platform": "javascript",
        "exception": {"values": [{"type": "TypeError", "value": "r.items is undefined",
            "stacktrace": {"frames": [
                {"abs_path": url, "filename": url, "function": "o", "lineno": 1, "colno": 56},
                {"abs_path": url, "filename": url, "function": "n", "lineno": 1, "colno": 24},
            ]}}]},
        "debug_meta": {"images": [{"type": "sourcemap", "code_file": url, "debug_id": debug_id}]},
    })
}

/// Source maps are forgotten when they go unused, as Sentry forgets them after 90 days of not
/// placing an event: the files that place events' frames (by release, by debug id; the map and
/// its minified source) are marked used, and the retention job deletes the others once their
/// last use (or their upload) is older than `--source-map-days`. The files stored by debug id
/// are listed (newest first, by id, page by page) and deleted over REST and gRPC.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unused_source_maps_are_forgotten_and_debug_files_are_listed() {
    const USED: &str = "6a3f6c1e-9d2b-4f3e-8c7a-0b1d2e3f4a5b";
    const IDLE: &str = "0c9e8d7f-6b5a-4c3d-9e2f-1a0b9c8d7e6f";
    let app = spawn_app().await;
    for release in ["shop@9", "shop@8"] {
        for (name, body) in [
            ("~/static/app.min.js.map", map()),
            ("~/static/app.min.js", MINIFIED.as_bytes().to_vec()),
        ] {
            let r = upload(&app, release, name, body).await;
            assert_eq!(r.status.as_u16(), 201, "{}", r.text);
            assert_eq!(r.body["last_used_at"], r.body["created_at"], "{}", r.text);
        }
    }
    let idle = assemble(&app, &debug_id_bundle(IDLE, "old"), "").await;
    assert_eq!(idle.debug_ids, [IDLE]);
    // Upper case, as some tools write it: stored as the SDKs report it.
    let used = assemble(&app, &debug_id_bundle(&USED.to_uppercase(), "app"), "").await;
    assert_eq!(used.debug_ids, [USED]);

    let all = debug_files(&app, "").await;
    let listed: Vec<(String, String, String)> = all
        .iter()
        .map(|f| (s(&f["debug_id"]), s(&f["kind"]), s(&f["name"])))
        .collect();
    assert_eq!(listed.len(), 4, "{all:?}");
    for (id, name) in [(USED, "app"), (IDLE, "old")] {
        for (kind, file) in [
            ("source_map", format!("~/static/{name}.min.js.map")),
            ("minified_source", format!("~/static/{name}.min.js")),
        ] {
            assert!(
                listed.contains(&(id.into(), kind.into(), file.clone())),
                "{id} {kind} {file} in {listed:?}"
            );
        }
    }
    // Newest first: the second bundle's files come before the first's.
    assert_eq!(listed[0].0, USED, "{listed:?}");
    assert_eq!(listed[3].0, IDLE, "{listed:?}");
    let f = &all[0];
    assert_eq!(uuid_str(&f["id"]), s(&f["id"]));
    assert_eq!(f["last_used_at"], f["created_at"]);
    assert!(n(&f["size"]) > 0 && s(&f["sha1"]).len() == 40, "{f}");
    let one = debug_files(&app, &format!("debug_id={}", USED.to_uppercase())).await;
    assert_eq!(one.len(), 2, "{one:?}");
    assert!(one.iter().all(|f| f["debug_id"] == json!(USED)));
    for (bad, status) in [
        ("debug_id=build-7", 400),
        ("cursor=nope", 400),
        ("limit=-1", 422),
    ] {
        let (st, e) = app.get(&format!("/v1/errors/debug-files?{bad}")).await;
        assert_eq!(st.as_u16(), status, "{bad}: {e}");
    }
    let mut releases = ReleaseServiceClient::new(app.channel().await);
    let page = releases
        .list_debug_files(app.req(pb::ListDebugFilesRequest {
            debug_id: IDLE.into(),
            limit: 1,
            cursor: String::new(),
        }))
        .await
        .expect("ListDebugFiles")
        .into_inner();
    assert_eq!(page.files.len(), 1);
    assert_eq!(page.files[0].debug_id, IDLE);
    assert!(!page.next_cursor.is_empty());

    // All stored 89 days ago: one day short of the default 90.
    let day = 86_400_000i64;
    let age = |days: i64| {
        ["release_files", "debug_files"].map(|t| {
            format!(
                "UPDATE {t} SET created_at = created_at - {ms}, last_used_at = last_used_at - {ms}",
                ms = days * day
            )
        })
    };
    let sql = age(89);
    app.run_sql(&[&sql[0], &sql[1]]).await;

    // An event of shop@9 and a Sentry event of the build marked USED are placed by them.
    let event = capture(&app, "shop@9").await;
    let frames = arr(&app.event(&event).await["exception"]["frames"]).clone();
    assert_eq!(frames[0]["function"], json!("perItem"), "{frames:?}");
    let (key, project) = crate::sentry::key_and_project(&app).await;
    let r = app
        .send(
            app.anon(Method::POST, &format!("/api/{project}/store/"))
                .header(
                    "X-Sentry-Auth",
                    format!("Sentry sentry_key={key}, sentry_version=7"),
                )
                .json(&sentry_event_with_debug_id(URL, USED)),
        )
        .await;
    assert_eq!(r.status.as_u16(), 200, "{}", r.text);
    // The uses are written down (every 200 ms here): the files read as used today.
    let recent =
        |f: &Value| time(&f["last_used_at"]) > chrono::Utc::now() - chrono::Duration::hours(1);
    poll_until(
        std::time::Duration::from_secs(10),
        "the files that placed frames to be marked used",
        || {
            let app = &app;
            async move {
                let by_id = debug_files(app, &format!("debug_id={USED}")).await;
                let shop9 = app.get_ok("/v1/errors/releases/shop@9/files").await;
                (by_id.iter().chain(arr(&shop9["files"])).all(recent)).then_some(())
            }
        },
    )
    .await;
    let shop8 = app.get_ok("/v1/errors/releases/shop@8/files").await;
    assert!(!arr(&shop8["files"]).iter().any(recent), "{shop8}");

    // Two days on, the unused ones are 91 days old: the retention job deletes them.
    let sql = age(2);
    app.run_sql(&[&sql[0], &sql[1]]).await;
    let left = poll_until(
        std::time::Duration::from_secs(10),
        "the unused source maps to be deleted",
        || {
            let app = &app;
            async move {
                let left = debug_files(app, "").await;
                (left.len() == 2).then_some(left)
            }
        },
    )
    .await;
    assert!(
        left.iter().all(|f| f["debug_id"] == json!(USED)),
        "{left:?}"
    );
    let shop8 = app.get_ok("/v1/errors/releases/shop@8/files").await;
    assert_eq!(shop8["files"], json!([]), "unused: deleted");
    let shop9 = app.get_ok("/v1/errors/releases/shop@9/files").await;
    assert_eq!(arr(&shop9["files"]).len(), 2, "used: kept {shop9}");
    // What is kept still places events.
    let event = capture(&app, "shop@9").await;
    let frames = arr(&app.event(&event).await["exception"]["frames"]).clone();
    assert_eq!(frames[0]["function"], json!("perItem"), "{frames:?}");

    // Deleting a debug id's files: by REST (any case), then it is unknown.
    let (st, b) = app
        .delete(&format!("/v1/errors/debug-files/{}", USED.to_uppercase()))
        .await;
    assert_eq!(st.as_u16(), 200, "{b}");
    assert_eq!(b, json!({"ok": true, "deleted": 2}));
    let path = format!("/v1/errors/debug-files/{USED}");
    let r = app.send(app.authed(Method::DELETE, &path)).await;
    assert_error(&r, 404, "NOT_FOUND", "DELETE", &path);
    let (st, e) = app.delete("/v1/errors/debug-files/build-7").await;
    assert_eq!(st.as_u16(), 400, "{e}");
    assert_eq!(debug_files(&app, "").await, Vec::<Value>::new());
    let st = releases
        .delete_debug_files(app.req(pb::DeleteDebugFilesRequest {
            debug_id: IDLE.into(),
        }))
        .await
        .expect_err("deleted by the retention job");
    assert_eq!(st.code(), tonic::Code::NotFound);
}
