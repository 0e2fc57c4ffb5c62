//! One test per answer of the Supabase Storage API on its object and bucket routes: what the
//! loopback server sends on the wire (status, body byte for byte, as the real server's source
//! produces it), and what the adapter makes of it where it can meet it.

mod wire;

use wire::*;

#[tokio::test]
async fn an_invalid_key_is_json_on_object_routes_and_text_on_tus() {
    let server = start().await;
    let wire = Wire::new(&server);
    let token = server.token("service_role");
    let post = wire
        .send(
            Method::POST,
            &format!("object/{BUCKET}/a%23b.jpg"),
            Some(&token),
            &[("x-upsert", "true")],
            vec![1; 3],
        )
        .await;
    assert_eq!(
        (post.status, post.body),
        (
            400,
            rest_error("400", "InvalidKey", "Invalid key: a#b.jpg", "InvalidKey")
        )
    );
    let tus = wire.tus_create(Some(&token), "a#b.mp4", 10, true).await;
    assert_eq!(
        (tus.status, tus.body.as_str()),
        (400, "Invalid key: a#b.mp4")
    );
    // the adapter knows the alphabet and asks nothing
    let before = server.stats().requests;
    let adapter = remote(&server, BUCKET, token);
    for len in [3, 2 * MIB] {
        let err = adapter
            .upload(&upload_row("a#b.jpg", Some(len)), patterned_stream(1, len))
            .await
            .unwrap_err();
        assert_eq!(kind(&err), (ErrorKind::InvalidInput, false), "{err}");
    }
    assert_eq!(server.stats().requests, before);
}

#[tokio::test]
async fn deleting_in_a_missing_bucket_is_no_such_key_and_the_adapter_reports_ok() {
    let server = start().await;
    let wire = Wire::new(&server);
    let token = server.token("service_role");
    let delete = wire
        .send(
            Method::DELETE,
            "object/no-such-bucket/a.jpg",
            Some(&token),
            &[],
            Vec::new(),
        )
        .await;
    assert_eq!(
        (delete.status, delete.body),
        (
            400,
            rest_error("404", "not_found", "Object not found", "NoSuchKey")
        )
    );
    remote(&server, "no-such-bucket", token)
        .delete(&upload_row("a.jpg", Some(3)))
        .await
        .unwrap();
}

#[tokio::test]
async fn deleting_an_object_hidden_by_row_level_security_is_access_denied_and_it_stays() {
    let server = start().await;
    let wire = Wire::new(&server);
    remote(&server, BUCKET, server.user_token("alice"))
        .upload(&upload_row("a.jpg", Some(3)), patterned_stream(1, 3))
        .await
        .unwrap();
    let bob = server.user_token("bob");
    let delete = wire
        .send(
            Method::DELETE,
            &format!("object/{BUCKET}/a.jpg"),
            Some(&bob),
            &[],
            Vec::new(),
        )
        .await;
    assert_eq!(
        (delete.status, delete.body),
        (
            400,
            rest_error("403", "Unauthorized", "Access denied", "AccessDenied")
        )
    );
    let err = remote(&server, BUCKET, bob)
        .delete(&upload_row("a.jpg", Some(3)))
        .await
        .unwrap_err();
    assert_eq!(kind(&err), (ErrorKind::PermissionDenied, false), "{err}");
    assert_eq!(
        server.object(BUCKET, "a.jpg").unwrap(),
        patterned_bytes(1, 3)
    );
}

#[tokio::test]
async fn a_missing_object_is_no_such_key() {
    let server = start().await;
    let wire = Wire::new(&server);
    let token = server.token("service_role");
    let get = wire
        .send(
            Method::GET,
            &format!("object/authenticated/{BUCKET}/gone.jpg"),
            Some(&token),
            &[],
            Vec::new(),
        )
        .await;
    assert_eq!(
        (get.status, get.body),
        (
            400,
            rest_error("404", "not_found", "Object not found", "NoSuchKey")
        )
    );
    let adapter = remote(&server, BUCKET, token);
    let gone = upload_row("gone.jpg", Some(3));
    let err = adapter.download(&gone).await.err().unwrap();
    assert_eq!(kind(&err), (ErrorKind::NotFound, false), "{err}");
    adapter.delete(&gone).await.unwrap();
}

#[tokio::test]
async fn a_missing_bucket_is_no_such_bucket() {
    let server = start().await;
    let wire = Wire::new(&server);
    let token = server.token("service_role");
    let get = wire
        .send(
            Method::GET,
            "object/authenticated/no-such-bucket/a.jpg",
            Some(&token),
            &[],
            Vec::new(),
        )
        .await;
    assert_eq!(
        (get.status, get.body),
        (
            400,
            rest_error(
                "404",
                "Bucket not found",
                "Bucket not found",
                "NoSuchBucket"
            )
        )
    );
    let adapter = remote(&server, "no-such-bucket", token);
    for len in [3, 2 * MIB] {
        let err = adapter
            .upload(&upload_row("a.jpg", Some(len)), patterned_stream(1, len))
            .await
            .unwrap_err();
        assert_eq!(kind(&err), (ErrorKind::Config, false), "{len}: {err}");
    }
}

#[tokio::test]
async fn an_object_above_the_size_limit_is_too_large() {
    let server = SupabaseStorageServer::start(SupabaseServerOptions {
        max_object_size: 1000,
        ..SupabaseServerOptions::default()
    })
    .await;
    let wire = Wire::new(&server);
    let token = server.token("service_role");
    let post = wire
        .send(
            Method::POST,
            &format!("object/{BUCKET}/big.jpg"),
            Some(&token),
            &[("x-upsert", "true")],
            vec![1; 2000],
        )
        .await;
    assert_eq!(
        (post.status, post.body),
        (
            400,
            rest_error(
                "413",
                "Payload too large",
                "The object exceeded the maximum allowed size",
                "EntityTooLarge"
            )
        )
    );
    let tus = wire.tus_create(Some(&token), "big.mp4", 2000, true).await;
    assert_eq!(
        (tus.status, tus.body.as_str()),
        (413, "Maximum size exceeded\n")
    );
    for (threshold, chunk) in [(MIB, MIB), (1500, 1000)] {
        let adapter = SupabaseRemoteStorage::new(
            SupabaseConfig::new(server.base_url(), BUCKET, API_KEY)
                .resumable(threshold, chunk)
                .access_token_provider(StaticAccessToken(Secret::new(token.clone()))),
        )
        .unwrap();
        let err = adapter
            .upload(
                &upload_row("big.jpg", Some(2000)),
                patterned_stream(1, 2000),
            )
            .await
            .unwrap_err();
        assert_eq!(kind(&err), (ErrorKind::InvalidInput, false), "{err}");
    }
}

#[tokio::test]
async fn an_upload_without_upsert_over_an_existing_object_is_a_duplicate() {
    let server = start().await;
    let wire = Wire::new(&server);
    let token = server.token("service_role");
    let adapter = remote(&server, BUCKET, token.clone());
    adapter
        .upload(&upload_row("a.jpg", Some(3)), patterned_stream(1, 3))
        .await
        .unwrap();
    let post = wire
        .send(
            Method::POST,
            &format!("object/{BUCKET}/a.jpg"),
            Some(&token),
            &[],
            vec![2; 3],
        )
        .await;
    assert_eq!(
        (post.status, post.body),
        (
            400,
            rest_error(
                "409",
                "Duplicate",
                "The resource already exists",
                "KeyAlreadyExists"
            )
        )
    );
    let tus = wire.tus_create(Some(&token), "a.jpg", 3, false).await;
    assert_eq!(
        (tus.status, tus.body.as_str()),
        (409, "The resource already exists")
    );
    // the adapter upserts, so uploading again (a retry) overwrites
    adapter
        .upload(&upload_row("a.jpg", Some(3)), patterned_stream(3, 3))
        .await
        .unwrap();
    assert_eq!(
        server.object(BUCKET, "a.jpg").unwrap(),
        patterned_bytes(3, 3)
    );
}

#[tokio::test]
async fn overwriting_another_users_object_violates_row_level_security() {
    let server = start().await;
    let wire = Wire::new(&server);
    let rls = "new row violates row-level security policy";
    let (alice, bob) = (server.user_token("alice"), server.user_token("bob"));
    // Bob starts an upload before Alice's object exists; its PATCH comes after
    let bobs_upload = wire.tus_location(&bob, "a.mp4", 3).await;
    remote(&server, BUCKET, alice)
        .upload(&upload_row("a.mp4", Some(3)), patterned_stream(1, 3))
        .await
        .unwrap();
    let post = wire
        .send(
            Method::POST,
            &format!("object/{BUCKET}/a.mp4"),
            Some(&bob),
            &[("x-upsert", "true")],
            vec![2; 3],
        )
        .await;
    assert_eq!(
        (post.status, post.body),
        (400, rest_error("403", "Unauthorized", rls, "AccessDenied"))
    );
    let tus = wire.tus_create(Some(&bob), "a.mp4", 3, true).await;
    assert_eq!((tus.status, tus.body.as_str()), (403, rls));
    let patch = wire
        .tus_patch(&bob, &bobs_upload, 0, vec![2; 3], true)
        .await;
    assert_eq!((patch.status, patch.body.as_str()), (403, rls));
    let err = remote(&server, BUCKET, bob)
        .upload(
            &upload_row("a.mp4", Some(2 * MIB)),
            patterned_stream(2, 2 * MIB),
        )
        .await
        .unwrap_err();
    assert_eq!(kind(&err), (ErrorKind::PermissionDenied, false), "{err}");
    assert_eq!(
        server.object(BUCKET, "a.mp4").unwrap(),
        patterned_bytes(1, 3)
    );
}

#[tokio::test]
async fn creating_a_bucket_with_a_users_token_is_refused() {
    let server = start().await;
    let wire = Wire::new(&server);
    let user = server.user_token("alice");
    let post = wire
        .send(
            Method::POST,
            "bucket",
            Some(&user),
            &[("content-type", "application/json")],
            br#"{"id":"photos","name":"photos","public":false}"#.to_vec(),
        )
        .await;
    assert_eq!(
        (post.status, post.body),
        (
            400,
            rest_error(
                "403",
                "Unauthorized",
                "new row violates row-level security policy",
                "AccessDenied"
            )
        )
    );
    let err = remote(&server, "photos", user)
        .create_bucket_if_missing()
        .await
        .unwrap_err();
    assert_eq!(kind(&err), (ErrorKind::PermissionDenied, false), "{err}");
    // an existing bucket is a duplicate, which the adapter takes as done
    let admin = server.token("service_role");
    let again = wire
        .send(
            Method::POST,
            "bucket",
            Some(&admin),
            &[("content-type", "application/json")],
            br#"{"name":"attachments"}"#.to_vec(),
        )
        .await;
    assert_eq!(
        (again.status, again.body),
        (
            400,
            rest_error(
                "409",
                "Duplicate",
                "The resource already exists",
                "BucketAlreadyExists"
            )
        )
    );
    remote(&server, BUCKET, admin)
        .create_bucket_if_missing()
        .await
        .unwrap();
}
