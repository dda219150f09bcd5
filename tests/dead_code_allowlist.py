# ruff: noqa
"""Names vulture (`make lint`) reports as unused that are used, by a library or a reader, not by our code.

Each line names why. A new entry needs a reason as good as these; dead code is deleted, not listed here.
"""

_ = object()
_.should_exit  # uvicorn.Server reads it to stop (console/server.py)
_.formatter_class  # argparse reads it when formatting help (devtools/cli_doc.py)
_.ContentType  # paho Properties: written for the broker and the receiver (events/publisher.py)
_.efConstruction  # faiss reads it when building the HNSW index (matching/faiss_backend.py)
_.intra_op_num_threads  # onnxruntime SessionOptions (runtime/onnx_model.py)
_.inter_op_num_threads  # onnxruntime SessionOptions
_.log_severity_level  # onnxruntime SessionOptions
_.on_disconnect  # paho calls it (sync/mqtt.py)
_.on_subscribe  # paho calls it
_.SessionExpiryInterval  # paho Properties sent in CONNECT (sync/mqtt.py)
_.ReceiveMaximum  # paho Properties sent in CONNECT
_.dead_letters  # a counter on the MQTT connection, read in a debugger and by tests of the dead-letter path
alert_rate_measured  # a field of the transparency report, rendered by its template (reports/build.py)
seconds_ack  # a field of the publish result, printed by `watchlist publish --json`
_.looks_embedded  # the tracker's counter, read by make bench (vision/tracker.py)
LEFT_EAR  # BlazeFace keypoint indices, named for the reader of vision/types.py
RIGHT_EAR
camera_fps  # ConsoleStatus keys (console/backend.py), read by the page's JavaScript (console/static/console.js)
watchlist_expires_at
matching
threshold_floor
expected_false_alert_rate_upper
calibration_groups  # ConsoleStatus key served by /api/status: the group figures behind the threshold (tests read it)
