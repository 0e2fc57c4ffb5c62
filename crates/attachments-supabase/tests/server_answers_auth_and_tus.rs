//! One test per answer of the Supabase Storage API on its token checks and TUS routes: what
//! the loopback server sends on the wire (status, body byte for byte, as the real server's
//! source produces it), and what the adapter makes of it where it can meet it. A change of the
//! loopback server away from the real one fails here, not silently in the adapter's other tests.

mod wire;

use wire::*;

#[tokio::test]
async fn an_expired_token_is_access_denied_with_joses_message_on_every_route() {
    let server = start().await;
    let wire = Wire::new(&server);
    let expired = server.expired_token();
    let get = wire
        .send(
            Method::GET,
            &format!("object/authenticated/{BUCKET}/a.jpg"),
            Some(&expired),
            &[],
            Vec::new(),
        )
        .await;
    assert_eq!(
        (get.status, get.body),
        (
            400,
            rest_error("403", "Unauthorized", EXPIRED, "AccessDenied")
        )
    );
    let tus = wire.tus_create(Some(&expired), "v.mp4", 10, true).await;
    assert_eq!(
        (tus.status, tus.body),
        (
            400,
            tus_json_error("403", "AccessDenied", "Unauthorized", EXPIRED)
        )
    );
    // still expired after the refresh: the app's session may come back, so it is retried later
    let adapter = remote(&server, BUCKET, expired);
    let err = adapter
        .upload(
            &upload_row("v.mp4", Some(2 * MIB)),
            patterned_stream(1, 2 * MIB),
        )
        .await
        .unwrap_err();
    assert_eq!(kind(&err), (ErrorKind::PermissionDenied, true), "{err}");
}

#[tokio::test]
async fn a_token_signed_with_another_secret_fails_signature_verification() {
    let server = start().await;
    let wire = Wire::new(&server);
    let forged = make_jwt("another-secret", "service_role", 4_000_000_000);
    let why = "signature verification failed";
    let delete = wire
        .send(
            Method::DELETE,
            &format!("object/{BUCKET}/a.jpg"),
            Some(&forged),
            &[],
            Vec::new(),
        )
        .await;
    assert_eq!(
        (delete.status, delete.body),
        (400, rest_error("403", "Unauthorized", why, "AccessDenied"))
    );
    let tus = wire.tus_create(Some(&forged), "v.mp4", 10, true).await;
    assert_eq!(
        (tus.status, tus.body),
        (
            400,
            tus_json_error("403", "AccessDenied", "Unauthorized", why)
        )
    );
    let adapter = remote(&server, BUCKET, forged);
    for len in [10, 2 * MIB] {
        let err = adapter
            .upload(&upload_row("v.mp4", Some(len)), patterned_stream(1, len))
            .await
            .unwrap_err();
        assert_eq!(kind(&err), (ErrorKind::PermissionDenied, false), "{err}");
    }
}

#[tokio::test]
async fn without_authorization_tus_routes_answer_invalid_compact_jws() {
    let server = start().await;
    let wire = Wire::new(&server);
    let tus = wire.tus_create(None, "v.mp4", 10, true).await;
    assert_eq!(
        (tus.status, tus.body),
        (
            400,
            tus_json_error("403", "AccessDenied", "Unauthorized", "Invalid Compact JWS")
        )
    );
    // the object routes require the header in their schema, checked before the token
    let get = wire
        .send(
            Method::GET,
            &format!("object/authenticated/{BUCKET}/a.jpg"),
            None,
            &[],
            Vec::new(),
        )
        .await;
    assert_eq!(
        (get.status, get.body),
        (
            400,
            rest_error(
                "400",
                "Error",
                "headers must have required property 'authorization'",
                "InvalidRequest"
            )
        )
    );
    // an empty token is no token: refused for good
    let adapter = remote(&server, BUCKET, String::new());
    let err = adapter
        .upload(
            &upload_row("v.mp4", Some(2 * MIB)),
            patterned_stream(1, 2 * MIB),
        )
        .await
        .unwrap_err();
    assert_eq!(kind(&err), (ErrorKind::PermissionDenied, false), "{err}");
}

#[tokio::test]
async fn a_patch_at_another_offset_is_an_upload_offset_conflict() {
    let server = start().await;
    let wire = Wire::new(&server);
    let token = server.token("service_role");
    let location = wire.tus_location(&token, "v.mp4", 10).await;
    let patch = wire.tus_patch(&token, &location, 5, vec![1; 5], true).await;
    assert_eq!(
        (patch.status, patch.body.as_str()),
        (409, "Upload-Offset conflict\n")
    );
    let head = wire.tus_head(&token, &location).await;
    assert_eq!(
        (head.status, head.header("upload-offset")),
        (200, Some("0")),
        "the upload is unchanged"
    );
}

#[tokio::test]
async fn an_unknown_upload_url_is_not_found_and_the_next_upload_starts_over() {
    let server = start().await;
    let wire = Wire::new(&server);
    let token = server.token("service_role");
    let unknown = format!("{}/upload/resumable/0123456789abcdef", server.base_url());
    let patch = wire.tus_patch(&token, &unknown, 0, vec![1; 5], true).await;
    assert_eq!(
        (patch.status, patch.body.as_str()),
        (404, "The file for this url was not found\n")
    );
    let head = wire.tus_head(&token, &unknown).await;
    assert_eq!(head.status, 404);

    let adapter = remote(&server, BUCKET, token);
    let row = upload_row("v.mp4", Some(2 * MIB));
    server.forget_next_upload();
    let err = adapter
        .upload(&row, patterned_stream(1, 2 * MIB))
        .await
        .unwrap_err();
    assert_eq!(kind(&err), (ErrorKind::Unavailable, true), "{err}");
    adapter
        .upload(&row, patterned_stream(1, 2 * MIB))
        .await
        .unwrap();
    assert_eq!(
        server.object(BUCKET, "v.mp4").unwrap(),
        patterned_bytes(1, 2 * MIB)
    );
}

#[tokio::test]
async fn head_after_the_upload_finished_reports_the_whole_length() {
    let server = start().await;
    let wire = Wire::new(&server);
    let token = server.token("service_role");
    let location = wire.tus_location(&token, "w.mp4", 10).await;
    let patch = wire
        .tus_patch(&token, &location, 0, vec![7; 10], true)
        .await;
    assert_eq!(
        (patch.status, patch.header("upload-offset")),
        (204, Some("10"))
    );
    let head = wire.tus_head(&token, &location).await;
    assert_eq!(
        (
            head.status,
            head.header("upload-offset"),
            head.header("upload-length")
        ),
        (200, Some("10"), Some("10"))
    );

    // the last PATCH's answer is lost after every byte arrived: HEAD says the upload is done
    let adapter = SupabaseRemoteStorage::new(
        SupabaseConfig::new(server.base_url(), BUCKET, API_KEY)
            .resumable(MIB, 2 * MIB)
            .access_token_provider(StaticAccessToken(Secret::new(token))),
    )
    .unwrap();
    server.interrupt_next_patch_after(2 * MIB);
    adapter
        .upload(
            &upload_row("v.mp4", Some(2 * MIB)),
            patterned_stream(3, 2 * MIB),
        )
        .await
        .unwrap();
    let stats = server.stats();
    assert_eq!(
        (stats.tus_creates, stats.tus_patches, stats.tus_heads),
        (2, 2, 2),
        "one PATCH and one HEAD per upload, nothing sent again"
    );
    assert_eq!(
        server.object(BUCKET, "v.mp4").unwrap(),
        patterned_bytes(3, 2 * MIB)
    );
}

#[tokio::test]
async fn a_patch_without_upsert_over_an_existing_object_is_refused_as_existing() {
    let server = start().await;
    let wire = Wire::new(&server);
    let token = server.token("service_role");
    let adapter = remote(&server, BUCKET, token.clone());
    adapter
        .upload(&upload_row("v.mp4", Some(10)), patterned_stream(1, 10))
        .await
        .unwrap();
    // created as an upsert, but the PATCH does not say so again
    let location = wire.tus_location(&token, "v.mp4", 10).await;
    let patch = wire
        .tus_patch(&token, &location, 0, vec![9; 10], false)
        .await;
    assert_eq!(
        (patch.status, patch.body.as_str()),
        (409, "The resource already exists")
    );
    assert_eq!(
        server.object(BUCKET, "v.mp4").unwrap(),
        patterned_bytes(1, 10)
    );
    let patch = wire
        .tus_patch(&token, &location, 0, vec![9; 10], true)
        .await;
    assert_eq!(patch.status, 204, "{}", patch.body);

    // the adapter says x-upsert on every TUS request: create, PATCH and the HEAD of a resume
    server.interrupt_next_patch_after(300_000);
    adapter
        .upload(
            &upload_row("v.mp4", Some(2 * MIB)),
            patterned_stream(2, 2 * MIB),
        )
        .await
        .unwrap();
    assert_eq!(
        server.object(BUCKET, "v.mp4").unwrap(),
        patterned_bytes(2, 2 * MIB)
    );
    let stats = server.stats();
    assert!(stats.tus_heads >= 1, "a resume happened");
    assert_eq!(
        stats.tus_without_upsert.keys().collect::<Vec<_>>(),
        vec!["PATCH"],
        "only this test's own PATCH lacked it"
    );
}
