//! The OpenAPI document of reel's API, served at `/openapi.json`.

use serde_json::{Value, json};

fn path_param(name: &str, description: &str) -> Value {
    json!({"name": name, "in": "path", "required": true, "description": description,
           "schema": {"type": "string"}})
}

fn call_params() -> Vec<Value> {
    vec![path_param("type", "call type"), path_param("id", "call id")]
}

/// The call's path parameters, then `extra`.
fn call_params_and(extra: impl IntoIterator<Item = Value>) -> Vec<Value> {
    let mut params = call_params();
    params.extend(extra);
    params
}

fn schema(name: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{name}")})
}

/// One operation of the Stream dialect: authenticated, answering JSON or the error envelope.
fn stream_op(
    id: &str,
    summary: &str,
    params: Vec<Value>,
    body: Option<&str>,
    answer: &str,
) -> Value {
    let mut op = json!({
        "operationId": id,
        "summary": summary,
        "parameters": params,
        "security": [{"api_key": [], "token": []}],
        "responses": {
            "200": {"description": "OK", "content": {"application/json": {"schema": schema(answer)}}},
            "default": {"description": "Error", "content": {"application/json": {"schema": schema("Error")}}}
        }
    });
    if let Some(b) = body {
        op["requestBody"] =
            json!({"required": false, "content": {"application/json": {"schema": schema(b)}}});
    }
    op
}

/// One operation authorized by a Bearer API token, answered in `envelope` (errors as
/// `error` says).
fn bearer_op(
    (id, summary): (&str, &str),
    params: Vec<Value>,
    body: Option<Value>,
    (envelope, error): (Value, &str),
) -> Value {
    let mut op = json!({
        "operationId": id, "summary": summary, "parameters": params,
        "security": [{"bearer": []}],
        "responses": {
            "200": {"description": "OK", "content": {"application/json": {"schema": envelope}}},
            "default": {"description": error, "content": {"application/json": {"schema": envelope}}}
        }
    });
    if let Some(b) = body {
        op["requestBody"] =
            json!({"required": true, "content": {"application/json": {"schema": b}}});
    }
    op
}

/// One operation of the RealtimeKit dialect: a Bearer API token, the `success` envelope.
fn kit_op(id: &str, summary: &str, params: Vec<Value>, body: Option<Value>) -> Value {
    let envelope = json!({"type": "object", "required": ["success"],
                          "properties": {"success": {"type": "boolean"}, "data": {},
                                         "paging": {"type": "object"},
                                         "error": {"type": "object", "properties": {
                                             "code": {"type": "integer"}, "message": {"type": "string"}}}}});
    let mut params = params;
    params.splice(
        0..0,
        [
            path_param("account_id", "any account id: up to 64 ASCII letters, digits, - and _ (reel serves one application)"),
            path_param("app_id", "any app id: up to 64 ASCII letters, digits, - and _ (reel serves one application)"),
        ],
    );
    bearer_op(
        (id, summary),
        params,
        body,
        (envelope, "Error (`success: false`)"),
    )
}

/// One operation of the broadcast dialect: a Bearer API secret, the `status` envelope.
fn broadcast_op(id: &str, summary: &str, params: Vec<Value>, body: Option<Value>) -> Value {
    let envelope = json!({"type": "object", "required": ["status", "data"],
                          "properties": {"status": {"enum": ["success", "fail", "error"]}, "data": {}}});
    bearer_op(
        (id, summary),
        params,
        body,
        (envelope, "Error (`status: fail`, `data.message`)"),
    )
}

/// A publish token's stream rules, as requests write them.
fn stream_rules() -> Value {
    json!({"type": "array", "items": {"type": "object", "required": ["streamName"], "properties": {
        "streamName": {"type": "string", "description": "a stream name (letters, digits, - and _, at most 64), or a regular expression the whole name must match"},
        "isRegex": {"type": "boolean"}}}})
}

fn query_param(name: &str, description: &str) -> Value {
    json!({"name": name, "in": "query", "required": false, "description": description,
           "schema": {"type": "string"}})
}

/// One operation of the WebRTC routes: a Bearer token (or `?token=`), plain-text errors.
fn webrtc_op(id: &str, summary: &str, params: Vec<Value>, responses: Value) -> Value {
    let mut params = params;
    params.push(query_param(
        "token",
        "the user token, when no Authorization header can be sent",
    ));
    let mut responses = responses;
    responses["default"] = json!({"description": "Error, as plain text",
                                  "content": {"text/plain": {"schema": {"type": "string"}}}});
    json!({"operationId": id, "summary": summary, "parameters": params,
           "security": [{"bearer": []}], "responses": responses})
}

/// `POST` of an SDP offer, answered `201` with the SDP answer (WHIP and WHEP).
fn offer_op(id: &str, summary: &str, params: Vec<Value>) -> Value {
    let mut op = webrtc_op(
        id,
        summary,
        params,
        json!({
            "201": {"description": "the SDP answer, with the server's candidates",
                    "headers": {"Location": {"schema": {"type": "string"}, "description": "the session's URL"},
                                "ETag": {"schema": {"type": "string"}}, "Link": {"schema": {"type": "string"}}},
                    "content": {"application/sdp": {"schema": {"type": "string"}}}},
            "503": {"description": "too many sessions; see Retry-After"}
        }),
    );
    op["requestBody"] =
        json!({"required": true, "content": {"application/sdp": {"schema": {"type": "string"}}}});
    op
}

/// `PATCH` and `DELETE` of a WHIP or WHEP session.
fn session_ops(kind: &str) -> Value {
    let session = || vec![path_param("session", "the session id from Location")];
    let mut patch = webrtc_op(
        &format!("Patch{kind}Session"),
        "Trickle ICE candidates, or restart ICE with new credentials (If-Match: the ETag)",
        session(),
        json!({
            "204": {"description": "candidates added"},
            "200": {"description": "ICE restarted: the server's fragment, and a new ETag",
                    "content": {"application/trickle-ice-sdpfrag": {"schema": {"type": "string"}}}},
            "412": {"description": "the ETag does not match"}
        }),
    );
    patch["requestBody"] = json!({"required": true,
        "content": {"application/trickle-ice-sdpfrag": {"schema": {"type": "string"}}}});
    json!({
        "patch": patch,
        "delete": webrtc_op(&format!("Delete{kind}Session"), "End the session", session(),
                            json!({"200": {"description": "ended"}})),
    })
}

fn event_stream(description: &str) -> Value {
    json!({"200": {"description": description, "content": {"text/event-stream": {"schema": {"type": "string"}}}}})
}

fn recording_type_param() -> Value {
    json!({"name": "recording_type", "in": "path", "required": true,
           "schema": {"type": "string", "enum": ["composite", "individual", "raw"]}})
}

/// The schemas the operations refer to.
fn schemas() -> serde_json::Map<String, Value> {
    let obj = json!({"type": "object", "additionalProperties": true});
    let ns = json!({"type": "integer", "description": "unix nanoseconds"});
    let mut schemas = serde_json::Map::new();
    schemas.insert("Error".into(), json!({"type": "object", "required": ["code", "message", "StatusCode", "duration"], "properties": {
                    "code": {"type": "integer", "description": "4 input, 5 authentication, 16 not found, 17 not allowed, -1 internal"},
                    "message": {"type": "string"}, "StatusCode": {"type": "integer"}, "duration": {"type": "string"},
                    "more_info": {"type": "string"}, "details": {"type": "array"}}}));
    schemas.insert(
        "Empty".into(),
        json!({"type": "object", "properties": {"duration": {"type": "string"}}}),
    );
    schemas.insert("CallRecording".into(), json!({"type": "object", "properties": {
                    "filename": {"type": "string"}, "url": {"type": "string"}, "start_time": ns, "end_time": ns,
                    "session_id": {"type": "string"}, "recording_type": {"type": "string", "enum": ["composite", "individual", "raw"]}}}));
    schemas.insert("ListRecordingsResponse".into(), json!({"type": "object", "properties": {
                    "recordings": {"type": "array", "items": schema("CallRecording")}, "duration": {"type": "string"}}}));
    schemas.insert("CallSettings".into(), json!({"type": "object", "description": "recording, individual_recording, raw_recording and Stream's other sections", "properties": {
                    "recording": {"type": "object", "properties": {
                        "mode": {"enum": ["available", "disabled", "auto-on"]}, "audio_only": {"type": "boolean"},
                        "quality": {"enum": ["360p", "480p", "720p", "1080p", "1440p", "portrait-360x640", "portrait-480x854", "portrait-720x1280", "portrait-1080x1920", "portrait-1440x2560"]},
                        "layout": {"type": "object", "properties": {
                            "name": {"enum": ["spotlight", "grid", "single-participant", "mobile", "custom"]},
                            "options": obj, "external_css_url": {"type": "string"}, "external_app_url": {"type": "string"},
                            "detect_orientation": {"type": "boolean"}}}}},
                    "individual_recording": {"type": "object", "properties": {
                        "mode": {"enum": ["available", "disabled", "auto-on"]},
                        "output_types": {"type": "array", "items": {"enum": ["audio_only", "video_only", "audio_video", "screenshare_audio_only", "screenshare_video_only", "screenshare_audio_video"]}}}},
                    "raw_recording": {"type": "object", "properties": {
                        "mode": {"enum": ["available", "disabled", "auto-on"]}, "audio_only": {"type": "boolean"}}}}}));
    schemas.insert("GetOrCreateCallRequest".into(), json!({"type": "object", "properties": {"data": {"type": "object", "properties": {
                    "created_by_id": {"type": "string"}, "custom": obj, "settings_override": schema("CallSettings"),
                    "members": {"type": "array", "items": {"type": "object", "required": ["user_id"], "properties": {"user_id": {"type": "string"}, "role": {"type": "string"}, "custom": obj}}},
                    "starts_at": ns, "team": {"type": "string"}}}}}));
    schemas.insert("UpdateCallRequest".into(), json!({"type": "object", "properties": {"custom": obj, "settings_override": schema("CallSettings"), "starts_at": ns}}));
    schemas.insert("CallEnvelope".into(), json!({"type": "object", "properties": {
                    "call": {"type": "object", "properties": {
                        "cid": {"type": "string"}, "id": {"type": "string"}, "type": {"type": "string"},
                        "settings": schema("CallSettings"), "current_session_id": {"type": "string"},
                        "recording": {"type": "boolean"}, "egress": obj, "created_at": ns, "updated_at": ns}},
                    "members": {"type": "array", "items": obj}, "own_capabilities": {"type": "array", "items": {"type": "string"}},
                    "created": {"type": "boolean"}, "duration": {"type": "string"}}}));
    schemas.insert(
        "StartRecordingRequest".into(),
        json!({"type": "object", "properties": {"recording_external_storage": {"type": "string"}}}),
    );
    schemas.insert(
        "PinRequest".into(),
        json!({"type": "object", "required": ["session_id", "user_id"], "properties": {
                    "session_id": {"type": "string", "description": "the participant's user_session_id"},
                    "user_id": {"type": "string"}}}),
    );
    schemas.insert("CallType".into(), json!({"type": "object", "properties": {
                    "name": {"type": "string"}, "settings": schema("CallSettings"),
                    "grants": {"type": "object", "additionalProperties": {"type": "array", "items": {"type": "string"}},
                               "description": "role -> StartRecording, StopRecording, ListRecordings, DeleteRecording or capability names"},
                    "notification_settings": obj, "external_storage": {"type": "string"}, "created_at": ns, "updated_at": ns}}));
    schemas.insert("ListCallTypesResponse".into(), json!({"type": "object", "properties": {"call_types": {"type": "object", "additionalProperties": schema("CallType")}}}));
    let grants = json!({"type": "object", "additionalProperties": {"type": "array", "items": {"type": "string"}},
                        "description": "role -> StartRecording, StopRecording, ListRecordings, DeleteRecording or capability names"});
    schemas.insert("CreateCallTypeRequest".into(), json!({"type": "object", "required": ["name"], "properties": {
                    "name": {"type": "string"}, "settings": schema("CallSettings"), "grants": grants.clone(), "notification_settings": obj, "external_storage": {"type": "string"}}}));
    schemas.insert("UpdateCallTypeRequest".into(), json!({"type": "object", "properties": {
                    "settings": schema("CallSettings"), "grants": grants, "notification_settings": obj, "external_storage": {"type": "string"}}}));
    schemas.insert("ExternalStorageRequest".into(), json!({"type": "object", "required": ["storage_type", "bucket", "aws_s3"], "properties": {
                    "name": {"type": "string"}, "storage_type": {"enum": ["s3"]}, "bucket": {"type": "string"}, "path": {"type": "string"},
                    "aws_s3": {"type": "object", "required": ["s3_region"], "properties": {
                        "s3_region": {"type": "string"}, "s3_api_key": {"type": "string"}, "s3_secret": {"type": "string"},
                        "s3_custom_endpoint_url": {"type": "string"}}}}}));
    schemas.insert("ExternalStorage".into(), json!({"type": "object", "properties": {
                    "name": {"type": "string"}, "bucket": {"type": "string"}, "path": {"type": "string"}, "type": {"type": "string"}}}));
    schemas.insert("ListExternalStoragesResponse".into(), json!({"type": "object", "properties": {"external_storages": {"type": "object", "additionalProperties": schema("ExternalStorage")}}}));
    schemas.insert(
        "CheckExternalStorageResponse".into(),
        json!({"type": "object", "properties": {"file_url": {"type": "string"}}}),
    );
    schemas.insert("UpdateUsersRequest".into(), json!({"type": "object", "required": ["users"], "properties": {"users": {"type": "object", "additionalProperties": {"type": "object", "required": ["id"], "properties": {
                    "id": {"type": "string"}, "role": {"type": "string"}, "name": {"type": "string"}, "image": {"type": "string"}, "custom": obj}}}}}));
    schemas.insert(
        "UsersResponse".into(),
        json!({"type": "object", "properties": {"users": obj}}),
    );
    schemas.insert("FailedWebhooksResponse".into(), json!({"type": "object", "properties": {"deliveries": {"type": "array", "items": {"type": "object", "properties": {
                    "id": {"type": "integer"}, "endpoint": {"type": "string"}, "call_cid": {"type": "string"}, "event_type": {"type": "string"},
                    "state": {"enum": ["retrying", "given_up"]}, "attempts": {"type": "integer"}, "last_status": {"type": "integer"},
                    "last_error": {"type": "string"}, "created_at": ns, "next_attempt_at": ns}}}}}));
    schemas
}

/// The document.
pub fn document() -> Value {
    let v = "/api/v2/video";
    let with = |mut p: Vec<Value>, extra: Value| {
        p.push(extra);
        p
    };
    let mut paths = serde_json::Map::new();
    let mut add = |path: String, ops: Value| {
        paths.insert(path, ops);
    };
    add(
        format!("{v}/call/{{type}}/{{id}}"),
        json!({
            "post": stream_op("GetOrCreateCall", "Get a call, creating it if needed", call_params(), Some("GetOrCreateCallRequest"), "CallEnvelope"),
            "get": stream_op("GetCall", "Get a call", call_params(), None, "CallEnvelope"),
            "patch": stream_op("UpdateCall", "Update a call's custom data, settings override or start time", call_params(), Some("UpdateCallRequest"), "CallEnvelope"),
        }),
    );
    add(
        format!("{v}/call/{{type}}/{{id}}/pin"),
        json!({
            "post": stream_op("VideoPin", "Pin a participant for everyone (layouts show them first)", call_params(), Some("PinRequest"), "Empty"),
        }),
    );
    add(
        format!("{v}/call/{{type}}/{{id}}/unpin"),
        json!({
            "post": stream_op("VideoUnpin", "Unpin a participant for everyone", call_params(), Some("PinRequest"), "Empty"),
        }),
    );
    add(
        format!("{v}/call/{{type}}/{{id}}/recordings"),
        json!({
            "get": stream_op("ListRecordings", "List a call's recorded files with signed download links", call_params(), None, "ListRecordingsResponse"),
        }),
    );
    add(
        format!("{v}/call/{{type}}/{{id}}/recordings/{{recording_type}}/start"),
        json!({
            "post": stream_op("StartRecording", "Start a recording of the given type in the active call session",
                              with(call_params(), recording_type_param()), Some("StartRecordingRequest"), "Empty"),
        }),
    );
    add(
        format!("{v}/call/{{type}}/{{id}}/recordings/{{recording_type}}/stop"),
        json!({
            "post": stream_op("StopRecording", "Stop the running recording of the given type",
                              with(call_params(), recording_type_param()), None, "Empty"),
        }),
    );
    add(
        format!("{v}/call/{{type}}/{{id}}/start_recording"),
        json!({
            "post": stream_op("StartCompositeRecording", "Start a composite recording (older path)", call_params(), Some("StartRecordingRequest"), "Empty"),
        }),
    );
    add(
        format!("{v}/call/{{type}}/{{id}}/stop_recording"),
        json!({
            "post": stream_op("StopCompositeRecording", "Stop the composite recording (older path)", call_params(), None, "Empty"),
        }),
    );
    add(
        format!("{v}/call/{{type}}/{{id}}/{{session}}/recordings/{{filename}}"),
        json!({
            "delete": stream_op("DeleteRecording", "Delete a recorded file",
                                with(with(call_params(), path_param("session", "call session id")), path_param("filename", "file name")),
                                None, "Empty"),
        }),
    );
    add(
        format!("{v}/calltypes"),
        json!({
            "get": stream_op("ListCallTypes", "List call types (server-side only)", vec![], None, "ListCallTypesResponse"),
            "post": stream_op("CreateCallType", "Create a call type (server-side only)", vec![], Some("CreateCallTypeRequest"), "CallType"),
        }),
    );
    add(
        format!("{v}/calltypes/{{name}}"),
        json!({
            "get": stream_op("GetCallType", "Get a call type", vec![path_param("name", "call type")], None, "CallType"),
            "put": stream_op("UpdateCallType", "Update a call type: settings are merged, grants replaced per role",
                             vec![path_param("name", "call type")], Some("UpdateCallTypeRequest"), "CallType"),
            "delete": stream_op("DeleteCallType", "Delete a call type that has no calls", vec![path_param("name", "call type")], None, "Empty"),
        }),
    );
    add(
        "/api/v2/external_storage".into(),
        json!({
            "get": stream_op("ListExternalStorage", "List external storages", vec![], None, "ListExternalStoragesResponse"),
            "post": stream_op("CreateExternalStorage", "Create an external storage (S3 or S3-compatible)", vec![], Some("ExternalStorageRequest"), "Empty"),
        }),
    );
    add(
        "/api/v2/external_storage/{name}".into(),
        json!({
            "put": stream_op("UpdateExternalStorage", "Replace an external storage's settings",
                             vec![path_param("name", "storage name")], Some("ExternalStorageRequest"), "ExternalStorage"),
            "delete": stream_op("DeleteExternalStorage", "Delete an external storage no call type uses",
                                vec![path_param("name", "storage name")], None, "Empty"),
        }),
    );
    add(
        "/api/v2/external_storage/{name}/check".into(),
        json!({
            "get": stream_op("CheckExternalStorage", "Write a test file to the storage and link to it",
                             vec![path_param("name", "storage name")], None, "CheckExternalStorageResponse"),
        }),
    );
    add(
        "/api/v2/users".into(),
        json!({
            "post": stream_op("UpdateUsers", "Create or replace user records (their role is used in grants)", vec![], Some("UpdateUsersRequest"), "UsersResponse"),
        }),
    );
    add(
        "/api/v2/reel/webhooks/failed".into(),
        json!({
            "get": stream_op("ListFailedWebhooks", "Webhook deliveries that failed: still retrying or given up", vec![], None, "FailedWebhooksResponse"),
        }),
    );
    let kit = "/client/v4/accounts/{account_id}/realtime/kit/{app_id}/recordings";
    let list_params = [
        (
            "meeting_id",
            "only this meeting's (`<call id>` of type default, or `<type>:<id>`)",
        ),
        ("page_no", "1-based page"),
        ("per_page", "recordings per page (1-100, default 20)"),
        ("sort_order", "ASC or DESC by request time (default DESC)"),
        (
            "status",
            "INVOKED, RECORDING, PAUSED, UPLOADING, UPLOADED or ERRORED (comma-separated)",
        ),
        ("start_time", "requested at or after (RFC 3339)"),
        ("end_time", "requested at or before (RFC 3339)"),
    ]
    .map(|(n, d)| query_param(n, d))
    .to_vec();
    add(
        kit.into(),
        json!({
            "get": kit_op("KitListRecordings", "List composite and track recordings", list_params, None),
            "post": kit_op("KitStartRecording",
                "Record the call as its layout (or the page at `url`) draws it, with its mixed audio",
                vec![],
                Some(json!({"type": "object", "required": ["meeting_id"], "properties": {
                    "meeting_id": {"type": "string"},
                    "allow_multiple_recordings": {"type": "boolean"},
                    "file_name_prefix": {"type": "string", "maxLength": 64},
                    "max_seconds": {"type": "integer", "minimum": 60, "maximum": 86400},
                    "url": {"type": "string", "format": "uri"},
                    "audio_config": {"type": "object", "properties": {
                        "codec": {"enum": ["AAC", "MP3"]}, "channel": {"enum": ["stereo", "mono"]},
                        "export_file": {"type": "boolean"}}},
                    "video_config": {"type": "object", "properties": {
                        "codec": {"enum": ["H264", "VP8"]}, "width": {"type": "integer"},
                        "height": {"type": "integer"}, "export_file": {"type": "boolean"},
                        "watermark": {"type": "object", "required": ["url"], "properties": {
                            "url": {"type": "string"},
                            "size": {"type": "object", "properties": {
                                "width": {"type": "integer"}, "height": {"type": "integer"}}},
                            "position": {"enum": ["left top", "right top", "left bottom", "right bottom"]}}}}},
                    "storage_config": {"type": "object", "required": ["type", "bucket", "access_key", "secret"],
                        "properties": {
                            "type": {"const": "aws"}, "bucket": {"type": "string"},
                            "region": {"type": "string"}, "access_key": {"type": "string"},
                            "secret": {"type": "string"}, "path": {"type": "string"},
                            "host": {"type": "string"}}}}}))),
        }),
    );
    add(
        format!("{kit}/track"),
        json!({"post": kit_op("KitStartTrackRecording",
            "Record each participant's audio as its own Opus WebM (allowlist of at most 100 users; layers name the files)",
            vec![],
            Some(json!({"type": "object", "required": ["meeting_id"], "properties": {
                "meeting_id": {"type": "string"},
                "user_ids": {"type": "array", "maxItems": 100, "items": {"type": "string"}},
                "layers": {"type": "object", "additionalProperties": {"type": "object", "properties": {
                    "media_kind": {"const": "audio"}, "file_name_prefix": {"type": "string"}}}}}})))}),
    );
    let id_param = vec![path_param("recording_id", "the recording")];
    add(
        format!("{kit}/{{recording_id}}"),
        json!({
            "get": kit_op("KitGetRecording", "A recording, with download links once uploaded", id_param.clone(), None),
            "put": kit_op("KitUpdateRecording", "Stop a recording, or pause or resume a composite", id_param,
                          Some(json!({"type": "object", "required": ["action"], "properties": {
                              "action": {"enum": ["stop", "pause", "resume"]}}}))),
        }),
    );
    add(
        format!("{kit}/active-recording/{{meeting_id}}"),
        json!({"get": kit_op("KitActiveRecording", "The meeting's recording that is recording now",
                             vec![path_param("meeting_id", "the meeting")], None)}),
    );
    let token_flags = json!({"record": {"type": "boolean"}, "multisource": {"type": "boolean"},
        "enableThumbnails": {"type": "boolean"}, "subscribeRequiresAuth": {"type": "boolean"}});
    let mut create = json!({"type": "object", "required": ["label", "streams"], "properties": {
        "label": {"type": "string", "maxLength": 256}, "streams": stream_rules(),
        "expires": {"type": "integer", "minimum": 1, "description": "seconds until it expires"},
        "expiresOn": {"type": "string", "format": "date-time"}}});
    let mut update = json!({"type": "object", "properties": {
        "label": {"type": "string", "maxLength": 256}, "refreshToken": {"type": "boolean"},
        "isActive": {"type": "boolean"}, "addTokenStreams": stream_rules(),
        "removeTokenStreams": stream_rules()}});
    for body in [&mut create, &mut update] {
        for (k, v) in token_flags.as_object().into_iter().flatten() {
            body["properties"][k] = v.clone();
        }
    }
    add(
        "/api/publish_token".into(),
        json!({"post": broadcast_op("CreatePublishToken",
            "Make a publish token (a fresh 64-hex value) for the streams it names", vec![], Some(create))}),
    );
    add(
        "/api/publish_token/list".into(),
        json!({"get": broadcast_op("ListPublishTokens", "List publish tokens, a page at a time", vec![
            query_param("page", "1-based page"),
            query_param("itemsOnPage", "tokens per page (1-100, default 10)"),
            query_param("sortBy", "Name or AddedOn (default)"),
            query_param("isDescending", "true for the reverse order"),
        ], None)}),
    );
    let token_param = vec![path_param("tokenId", "the token's id")];
    add(
        "/api/publish_token/{tokenId}".into(),
        json!({
            "get": broadcast_op("ReadPublishToken", "A publish token", token_param.clone(), None),
            "put": broadcast_op("UpdatePublishToken", "Change a publish token (settings left out stay)",
                                token_param.clone(), Some(update)),
            "delete": broadcast_op("DeletePublishToken", "Delete a publish token", token_param, None),
        }),
    );
    let record_list = |by: Option<(&str, &str)>| {
        let mut params = vec![
            query_param("page", "1-based page"),
            query_param("itemsOnPage", "record files per page (1-100, default 10)"),
            query_param("sortBy", "RecordedOn (default), StreamName or Token"),
            query_param("isDescending", "true for the reverse order"),
            query_param("status", "Started, InProgress, Complete or Error"),
        ];
        params.extend(by.map(|(name, what)| {
            let mut p = query_param(name, what);
            p["required"] = json!(true);
            p
        }));
        params
    };
    add(
        "/api/record_files/list".into(),
        json!({"get": broadcast_op("ListRecordFiles", "List the record files of broadcast recordings, a page at a time", record_list(None), None)}),
    );
    add(
        "/api/record_files/list_by_token".into(),
        json!({"get": broadcast_op("ListRecordFilesByToken", "List one publish token's record files",
            record_list(Some(("tokenId", "the publish token"))), None)}),
    );
    add(
        "/api/record_files/list_by_stream".into(),
        json!({"get": broadcast_op("ListRecordFilesByStream", "List one stream's record files",
            record_list(Some(("streamName", "the stream"))), None)}),
    );
    let record_param = vec![path_param("recordFileId", "the record file's id")];
    add(
        "/api/record_files/{recordFileId}".into(),
        json!({
            "get": broadcast_op("ReadRecordFile", "A record file with its metadata and a signed download link", record_param.clone(), None),
            "delete": broadcast_op("DeleteRecordFile", "Delete a record file and its stored file, for good", record_param, None),
        }),
    );
    add(
        "/api/record_files/delete".into(),
        json!({"post": broadcast_op("DeleteRecordFiles", "Delete several record files and their stored files", vec![],
            Some(json!({"type": "object", "required": ["recordFileIds"], "properties": {
                "recordFileIds": {"type": "array", "maxItems": 1000, "items": {"type": "integer"}}}})))}),
    );
    add(
        "/api/record_files/delete/all".into(),
        json!({"post": broadcast_op("DeleteAllRecordFiles", "Delete every finished record file and its stored file", vec![], None)}),
    );
    add(
        "/api/record_files/usage".into(),
        json!({"get": broadcast_op("RecordFilesUsage", "The bytes the broadcast recordings' stored files take", vec![], None)}),
    );
    let whip_params = call_params_and([
        query_param("source", "`screen` for a screen share"),
        query_param("source_id", "which of the user's sources (several cameras)"),
    ]);
    add(
        "/whip/{type}/{id}".into(),
        json!({"post": offer_op("Publish", "Publish camera and microphone, or a screen share, into a call (WHIP); creates the call if needed",
                                whip_params)}),
    );
    add(
        "/whip/broadcast/{stream}".into(),
        json!({"post": offer_op("PublishBroadcast",
        "Publish a broadcast stream with a publish token (Bearer); recorded as the token, `record` and `noRecord` say",
        vec![
            path_param("stream", "the stream name"),
            query_param("sourceId", "which source of the stream (multisource tokens)"),
            query_param("record", "record this broadcast even if the token does not"),
            query_param("noRecord", "record nothing of this broadcast"),
        ])}),
    );
    add("/whip/sessions/{session}".into(), session_ops("Whip"));
    add(
        "/whep/{type}/{id}".into(),
        json!({"post": offer_op("Play", "Play every other participant's tracks (WHEP); the offer's m-lines are slots, see the session's events", call_params())}),
    );
    let track_params = call_params_and([path_param("track_id", "the track")]);
    add(
        "/whep/{type}/{id}/tracks/{track_id}".into(),
        json!({"post": offer_op("PlayTrack", "Play one track (WHEP)", track_params)}),
    );
    add("/whep/sessions/{session}".into(), session_ops("Whep"));
    add(
        "/whep/sessions/{session}/events".into(),
        json!({"get": webrtc_op("PlayerSlots", "Which track each of the player's m-lines carries, as it changes (`slots` events)",
                                vec![path_param("session", "the WHEP session id")],
                                event_stream("server-sent events"))}),
    );
    add(
        "/events/{type}/{id}".into(),
        json!({"get": webrtc_op("CallEvents", "The call's participants, tracks, dominant speaker and pins (`call.state`), then its events as they happen",
                                call_params(), event_stream("server-sent events"))}),
    );
    let join_params = call_params_and([
        query_param("token", "the user token"),
        query_param("codec", "preferred video codec: VP8, VP9, H264 or AV1"),
    ]);
    add(
        "/join/{type}/{id}".into(),
        json!({"get": {"operationId": "JoinPage", "summary": "A page that holds a real call in the browser (camera, microphone, screen share, recording buttons)",
                       "parameters": join_params,
                       "responses": {"200": {"description": "the page", "content": {"text/html": {}}},
                                     "401": {"description": "missing or invalid token"}}}}),
    );
    add(
        "/files/{key}".into(),
        json!({
            "get": {
                "operationId": "DownloadFile",
                "summary": "Download a locally stored recording through a signed link (supports Range)",
                "parameters": [path_param("key", "object key (may contain slashes)"),
                               {"name": "expires", "in": "query", "required": true, "schema": {"type": "integer"}},
                               {"name": "signature", "in": "query", "required": true, "schema": {"type": "string"}}],
                "responses": {"200": {"description": "the file"}, "206": {"description": "a range of the file"},
                              "403": {"description": "expired or tampered link"}, "404": {"description": "no such file"}}
            }
        }),
    );
    add(
        "/healthz".into(),
        json!({"get": {"operationId": "Health", "summary": "Liveness and database check",
        "responses": {"200": {"description": "ok"}, "503": {"description": "database unavailable"}}}}),
    );
    add(
        "/metrics".into(),
        json!({"get": {"operationId": "Metrics", "summary": "Prometheus metrics",
        "responses": {"200": {"description": "OpenMetrics text"}}}}),
    );
    add(
        "/openapi.json".into(),
        json!({"get": {"operationId": "OpenApi", "summary": "This document",
        "responses": {"200": {"description": "OpenAPI 3.1 document"}}}}),
    );

    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "reel",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Self-hosted recording service. The /api/v2 paths follow Stream's video API so that its server SDKs work unchanged. Every request carries ?api_key= and an HS256 token (signed with the API secret) in the Authorization header. Timestamps are unix nanoseconds; successful answers carry a duration field. The /client/v4 paths follow RealtimeKit's recordings API: a Bearer API token (the API secret, or a token signed with it), RFC 3339 times, and the success envelope. The /api/publish_token paths follow the real-time streaming service's API: a Bearer API secret (or a server token signed with it), integer ids, RFC 3339 times, and the `{status, data}` envelope."
        },
        "components": {
            "securitySchemes": {
                "api_key": {"type": "apiKey", "in": "query", "name": "api_key"},
                "token": {"type": "apiKey", "in": "header", "name": "Authorization"},
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
            },
            "schemas": schemas(),
        },
        "paths": paths
    })
}
