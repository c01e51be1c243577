//! The security headers (CSP, nosniff, Referrer-Policy, no framing) on `/`, an asset and an API
//! answer — from the API server, and from the web image's nginx configuration run by Debian's
//! nginx (`make test-deps` installs it).

mod common;

use std::net::TcpListener as StdListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use api_server::http::Settings;
use api_server::http::headers::CONTENT_SECURITY_POLICY;
use common::{StoreKind, TestServer, test_settings};
use serde_json::json;

fn write_web_app(dir: &Path) {
    std::fs::create_dir_all(dir.join("assets")).expect("assets dir");
    std::fs::write(dir.join("index.html"), "<html>beer app</html>").expect("write");
    std::fs::write(dir.join("assets/app-1234.js"), "console.log('hi')").expect("write");
}

fn assert_security_headers(what: &str, headers: &reqwest::header::HeaderMap) {
    let get = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    let csp = get("content-security-policy");
    for directive in [
        "default-src 'self'",
        "connect-src 'self'",
        "frame-ancestors 'none'",
        "script-src 'self'",
    ] {
        assert!(
            csp.contains(directive),
            "{what}: CSP {csp:?} lacks {directive}"
        );
    }
    assert_eq!(get("x-content-type-options"), "nosniff", "{what}");
    assert_eq!(get("referrer-policy"), "same-origin", "{what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_server_sends_security_headers_on_everything() {
    let web = tempfile::tempdir().expect("temp dir");
    write_web_app(web.path());
    let settings = Settings {
        web_dir: Some(web.path().to_path_buf()),
        ..test_settings()
    };
    let server = TestServer::start_with(StoreKind::Embedded, settings).await;
    let created = server
        .post(
            "/api/v1/meetups",
            None,
            json!({"title": "t", "organizerName": "A", "timeZone": "UTC"}),
        )
        .await;
    assert_eq!(created.status, 201);
    assert_security_headers("POST /api/v1/meetups", &created.headers);
    // It carries tokens: no cache may keep it.
    assert_eq!(created.headers["cache-control"], "no-store");
    let id = created.body["meetup"]["id"].as_str().expect("id");
    for path in [
        "/".to_string(),
        "/assets/app-1234.js".to_string(),
        "/m/abc".to_string(),
        format!("/api/v1/meetups/{id}"),
        "/api/v1/nope".to_string(),
        "/healthz".to_string(),
    ] {
        let reply = server.get(&path).await;
        assert!(reply.status < 500, "{path}: {}", reply.status);
        assert_security_headers(&path, &reply.headers);
    }
    let view = server.get(&format!("/api/v1/meetups/{id}")).await;
    assert_eq!(view.headers["cache-control"], "no-store");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_web_app_is_gzipped_hashed_assets_are_immutable_and_index_revalidates() {
    let web = tempfile::tempdir().expect("temp dir");
    write_web_app(web.path());
    let bundle = "console.log('a freshly tapped keg');\n".repeat(200);
    std::fs::write(web.path().join("assets/index-abc123.js"), &bundle).expect("write");
    let settings = Settings {
        web_dir: Some(web.path().to_path_buf()),
        ..test_settings()
    };
    let server = TestServer::start_with(StoreKind::Embedded, settings).await;
    let get = |path: &'static str| {
        let request = server
            .http
            .get(format!("{}{path}", server.base))
            .header("accept-encoding", "gzip");
        async move { request.send().await.expect("answer") }
    };
    let header = |reply: &reqwest::Response, name: &str| {
        reply
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    let asset = get("/assets/index-abc123.js").await;
    assert_eq!(asset.status(), 200);
    assert_eq!(
        header(&asset, "cache-control"),
        "public, max-age=31536000, immutable"
    );
    assert_eq!(header(&asset, "content-encoding"), "gzip");
    let zipped = asset.bytes().await.expect("body");
    assert!(zipped.len() * 10 < bundle.len(), "{} bytes", zipped.len());
    for path in ["/", "/m/abc"] {
        let page = get(path).await;
        assert_eq!(page.status(), 200, "{path}");
        assert_eq!(header(&page, "cache-control"), "no-cache", "{path}");
    }
    // A hashed file that is not there is a 404 nobody keeps, not index.html.
    let missing = get("/assets/gone-999.js").await;
    assert_eq!(missing.status(), 404);
    assert_eq!(header(&missing, "cache-control"), "no-store");
    // The API is untouched: still no-store, never the web app's policy.
    let api = get("/api/v1/nope").await;
    assert_eq!(header(&api, "cache-control"), "no-store");
}

/// Debian's nginx with the web image's server block, on a free loopback port.
struct Nginx {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_nginx(html: &Path) -> Nginx {
    let port = StdListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let dir = tempfile::tempdir().expect("temp dir");
    // The image's template (docker-entrypoint.sh renders it the same way), on loopback, with its
    // /tmp paths moved into a folder of the test's own and no API upstream.
    let web = Path::new(env!("CARGO_MANIFEST_DIR")).join("../web");
    let template = std::fs::read_to_string(web.join("nginx.conf")).expect("web/nginx.conf");
    let listen = "listen 8080;";
    let root = "root /usr/share/beermeetup/web;";
    let headers = "include /etc/nginx/beermeetup/security-headers.conf;";
    assert!(template.contains(listen) && template.contains(root) && template.contains(headers));
    let prefix = dir.path().display().to_string();
    let main = template
        .replace(listen, &format!("listen 127.0.0.1:{port};"))
        .replace(root, &format!("root {};", html.display()))
        .replace(
            headers,
            &format!(
                "include {};",
                web.join("nginx-security-headers.conf").display()
            ),
        )
        .replace("/tmp/nginx/", &format!("{prefix}/"))
        .replace("access_log /dev/stdout combined;", "access_log off;")
        .replace("__RESOLVER__", "# no resolver in this test")
        .replace("__API_UPSTREAM__", "");
    let config = dir.path().join("nginx.conf");
    std::fs::write(&config, main).expect("write config");
    let nginx = ["/usr/sbin/nginx", "nginx"]
        .into_iter()
        .find(|candidate| Command::new(candidate).arg("-v").output().is_ok())
        .expect("nginx is installed (`make test-deps` installs Debian's nginx-light)");
    let child = Command::new(nginx)
        .arg("-p")
        .arg(dir.path())
        .arg("-c")
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("nginx starts");
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "nginx did not listen: {}",
            std::fs::read_to_string(dir.path().join("error.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    Nginx {
        child,
        port,
        _dir: dir,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_web_images_nginx_sends_security_headers_in_every_location() {
    let html = tempfile::tempdir().expect("temp dir");
    write_web_app(html.path());
    // nginx's worker may run as another user: let it read the files.
    for path in [
        html.path().to_path_buf(),
        html.path().join("assets"),
        html.path().join("index.html"),
        html.path().join("assets/app-1234.js"),
    ] {
        use std::os::unix::fs::PermissionsExt;
        let mode = if path.is_dir() { 0o755 } else { 0o644 };
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).expect("chmod");
    }
    let nginx = start_nginx(html.path());
    let http = reqwest::Client::new();
    for (path, cache) in [
        ("/", Some("no-cache")),
        ("/m/abc", Some("no-cache")),
        ("/assets/app-1234.js", Some("immutable")),
        ("/healthz", None),
        ("/assets/missing.js", None),
    ] {
        let reply = http
            .get(format!("http://127.0.0.1:{}{path}", nginx.port))
            .send()
            .await
            .expect("nginx answers");
        assert_security_headers(&format!("nginx {path}"), reply.headers());
        let csp = reply.headers()["content-security-policy"]
            .to_str()
            .expect("ascii");
        assert_eq!(
            csp, CONTENT_SECURITY_POLICY,
            "nginx and the API server agree"
        );
        if let Some(cache) = cache {
            let got: Vec<_> = reply
                .headers()
                .get_all("cache-control")
                .iter()
                .filter_map(|v| v.to_str().ok())
                .collect();
            assert!(
                got.iter().any(|value| value.contains(cache)),
                "{path}: cache-control {got:?}"
            );
        }
    }
}
