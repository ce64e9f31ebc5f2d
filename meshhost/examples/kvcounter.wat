;; kvcounter: a wasmCloud 0.x style actor (waPC, import module "wasmbus"),
;; hand-written in WebAssembly text so it needs no toolchain.
;;
;; It answers HttpServer.HandleRequest (from the wasmcloud:httpserver provider):
;;   1. reads the msgpack HttpRequest {method, path, queryString, header, body}
;;      just far enough to find header "x-meshhost-host" (if a host adds it) or
;;      else "host" (header names arrive lower-case),
;;   2. calls KeyValue.Increment {key: "counter", value: 1} on its
;;      wasmcloud:keyvalue link (binding "default"); the answer is a msgpack int,
;;   3. answers a msgpack HttpResponse {statusCode: 200,
;;      header: {"content-type": ["application/json"]},
;;      body: {"count": <n>, "host": "<that header's first value>"}}.
;; A failed host call becomes the actor's error (the HTTP server answers 500).
;;
;; Memory map: 0..1023 constants, 2048.. JSON body, 4096.. response, 65536.. request.
(module
  (import "wasmbus" "__guest_request" (func $guest_request (param i32 i32)))
  (import "wasmbus" "__guest_response" (func $guest_response (param i32 i32)))
  (import "wasmbus" "__guest_error" (func $guest_error (param i32 i32)))
  (import "wasmbus" "__host_call"
    (func $host_call (param i32 i32 i32 i32 i32 i32 i32 i32) (result i32)))
  (import "wasmbus" "__host_response_len" (func $host_response_len (result i32)))
  (import "wasmbus" "__host_response" (func $host_response (param i32)))
  (import "wasmbus" "__host_error_len" (func $host_error_len (result i32)))
  (import "wasmbus" "__host_error" (func $host_error (param i32)))
  (memory (export "memory") 2)

  ;; ---- constants ------------------------------------------------------------------
  (data (i32.const 16) "HttpServer.HandleRequest")                     ;; 24 bytes
  (data (i32.const 48) "default")                                      ;; 7
  (data (i32.const 64) "wasmcloud:keyvalue")                           ;; 18
  (data (i32.const 96) "KeyValue.Increment")                           ;; 18
  ;; msgpack IncrementRequest {"key": "counter", "value": 1}          ;; 20 bytes
  (data (i32.const 128) "\82\a3key\a7counter\a5value\01")
  (data (i32.const 160) "header")                                      ;; 6
  (data (i32.const 176) "host")                                        ;; 4
  (data (i32.const 192) "unknown operation")                           ;; 17
  (data (i32.const 224) "KeyValue.Increment did not answer an integer");; 44
  ;; msgpack HttpResponse up to the body's bin16 length:               ;; 59 bytes
  ;; {"statusCode": 200, "header": {"content-type": ["application/json"]}, "body": bin16
  (data (i32.const 288)
    "\83\aastatusCode\cc\c8\a6header\81\accontent-type\91\b0application/json\a4body\c5")
  (data (i32.const 352) "{\22count\22:")                               ;; 9: {"count":
  (data (i32.const 368) ",\22host\22:\22")                             ;; 9: ,"host":"
  (data (i32.const 384) "\22}")                                        ;; 2: "}
  (data (i32.const 400) "x-meshhost-host")                             ;; 15

  (global $REQ i32 (i32.const 65536))
  (global $JSON i32 (i32.const 2048))
  (global $RESP i32 (i32.const 4096))
  (global $MAX_HOST i32 (i32.const 256))   ;; longer host headers are cut

  ;; ---- a tiny msgpack reader over [$pos, $end) --------------------------------------
  (global $pos (mut i32) (i32.const 0))
  (global $end (mut i32) (i32.const 0))

  (func $byte (result i32)
    (local $b i32)
    (if (i32.ge_u (global.get $pos) (global.get $end)) (then unreachable))  ;; truncated input
    (local.set $b (i32.load8_u (global.get $pos)))
    (global.set $pos (i32.add (global.get $pos) (i32.const 1)))
    (local.get $b))

  ;; an n-byte big-endian unsigned integer (n <= 4)
  (func $be (param $n i32) (result i32)
    (local $v i32)
    (block $done
      (loop $more
        (br_if $done (i32.eqz (local.get $n)))
        (local.set $v (i32.or (i32.shl (local.get $v) (i32.const 8)) (call $byte)))
        (local.set $n (i32.sub (local.get $n) (i32.const 1)))
        (br $more)))
    (local.get $v))

  (func $advance (param $n i32)
    (if (i32.gt_u (local.get $n) (i32.sub (global.get $end) (global.get $pos))) (then unreachable))
    (global.set $pos (i32.add (global.get $pos) (local.get $n))))

  ;; length of a string header at $pos (the cursor moves to the string's bytes); -1 if not a string
  (func $str_len (result i32)
    (local $t i32)
    (local.set $t (call $byte))
    (if (i32.eq (i32.and (local.get $t) (i32.const 0xe0)) (i32.const 0xa0))
      (then (return (i32.and (local.get $t) (i32.const 0x1f)))))
    (if (i32.eq (local.get $t) (i32.const 0xd9)) (then (return (call $be (i32.const 1)))))
    (if (i32.eq (local.get $t) (i32.const 0xda)) (then (return (call $be (i32.const 2)))))
    (if (i32.eq (local.get $t) (i32.const 0xdb)) (then (return (call $be (i32.const 4)))))
    (i32.const -1))

  ;; entries of a map header (fixmap, map16, map32); -1 if not a map
  (func $map_len (result i32)
    (local $t i32)
    (local.set $t (call $byte))
    (if (i32.eq (i32.and (local.get $t) (i32.const 0xf0)) (i32.const 0x80))
      (then (return (i32.and (local.get $t) (i32.const 0x0f)))))
    (if (i32.eq (local.get $t) (i32.const 0xde)) (then (return (call $be (i32.const 2)))))
    (if (i32.eq (local.get $t) (i32.const 0xdf)) (then (return (call $be (i32.const 4)))))
    (i32.const -1))

  ;; elements of an array header (fixarray, array16, array32); -1 if not an array
  (func $array_len (result i32)
    (local $t i32)
    (local.set $t (call $byte))
    (if (i32.eq (i32.and (local.get $t) (i32.const 0xf0)) (i32.const 0x90))
      (then (return (i32.and (local.get $t) (i32.const 0x0f)))))
    (if (i32.eq (local.get $t) (i32.const 0xdc)) (then (return (call $be (i32.const 2)))))
    (if (i32.eq (local.get $t) (i32.const 0xdd)) (then (return (call $be (i32.const 4)))))
    (i32.const -1))

  ;; skip one msgpack value of any type
  (func $skip
    (local $t i32) (local $n i32)
    (local.set $t (call $byte))
    (if (i32.le_u (local.get $t) (i32.const 0x7f)) (then (return)))          ;; positive fixint
    (if (i32.ge_u (local.get $t) (i32.const 0xe0)) (then (return)))          ;; negative fixint
    (if (i32.lt_u (local.get $t) (i32.const 0x90))                           ;; fixmap
      (then (call $skip_n (i32.shl (i32.and (local.get $t) (i32.const 0x0f)) (i32.const 1)))
            (return)))
    (if (i32.lt_u (local.get $t) (i32.const 0xa0))                           ;; fixarray
      (then (call $skip_n (i32.and (local.get $t) (i32.const 0x0f))) (return)))
    (if (i32.lt_u (local.get $t) (i32.const 0xc0))                           ;; fixstr
      (then (call $advance (i32.and (local.get $t) (i32.const 0x1f))) (return)))
    (block $sized
      (block $fixed
        (block $ext
          ;; nil, (unused), false, true
          (br_if $fixed (i32.le_u (local.get $t) (i32.const 0xc3)))
          ;; bin8/16/32 and str8/16/32: a length, then that many bytes
          (if (i32.eq (local.get $t) (i32.const 0xc4)) (then (local.set $n (call $be (i32.const 1))) (br $sized)))
          (if (i32.eq (local.get $t) (i32.const 0xc5)) (then (local.set $n (call $be (i32.const 2))) (br $sized)))
          (if (i32.eq (local.get $t) (i32.const 0xc6)) (then (local.set $n (call $be (i32.const 4))) (br $sized)))
          (if (i32.eq (local.get $t) (i32.const 0xd9)) (then (local.set $n (call $be (i32.const 1))) (br $sized)))
          (if (i32.eq (local.get $t) (i32.const 0xda)) (then (local.set $n (call $be (i32.const 2))) (br $sized)))
          (if (i32.eq (local.get $t) (i32.const 0xdb)) (then (local.set $n (call $be (i32.const 4))) (br $sized)))
          ;; ext8/16/32: a length, a type byte, the data
          (if (i32.eq (local.get $t) (i32.const 0xc7)) (then (local.set $n (call $be (i32.const 1))) (br $ext)))
          (if (i32.eq (local.get $t) (i32.const 0xc8)) (then (local.set $n (call $be (i32.const 2))) (br $ext)))
          (if (i32.eq (local.get $t) (i32.const 0xc9)) (then (local.set $n (call $be (i32.const 4))) (br $ext)))
          ;; numbers of fixed width
          (if (i32.or (i32.eq (local.get $t) (i32.const 0xcc)) (i32.eq (local.get $t) (i32.const 0xd0)))
            (then (call $advance (i32.const 1)) (return)))
          (if (i32.or (i32.eq (local.get $t) (i32.const 0xcd)) (i32.eq (local.get $t) (i32.const 0xd1)))
            (then (call $advance (i32.const 2)) (return)))
          (if (i32.or (i32.eq (local.get $t) (i32.const 0xca))
                      (i32.or (i32.eq (local.get $t) (i32.const 0xce)) (i32.eq (local.get $t) (i32.const 0xd2))))
            (then (call $advance (i32.const 4)) (return)))
          (if (i32.or (i32.eq (local.get $t) (i32.const 0xcb))
                      (i32.or (i32.eq (local.get $t) (i32.const 0xcf)) (i32.eq (local.get $t) (i32.const 0xd3))))
            (then (call $advance (i32.const 8)) (return)))
          ;; fixext 1/2/4/8/16: a type byte and 2^(t-0xd4) bytes
          (if (i32.le_u (local.get $t) (i32.const 0xd8))
            (then (call $advance (i32.add (i32.const 1)
                    (i32.shl (i32.const 1) (i32.sub (local.get $t) (i32.const 0xd4)))))
                  (return)))
          ;; array16/32, map16/32
          (if (i32.eq (local.get $t) (i32.const 0xdc)) (then (call $skip_n (call $be (i32.const 2))) (return)))
          (if (i32.eq (local.get $t) (i32.const 0xdd)) (then (call $skip_n (call $be (i32.const 4))) (return)))
          (if (i32.eq (local.get $t) (i32.const 0xde))
            (then (call $skip_n (i32.shl (call $be (i32.const 2)) (i32.const 1))) (return)))
          (if (i32.eq (local.get $t) (i32.const 0xdf))
            (then (call $skip_n (i32.shl (call $be (i32.const 4)) (i32.const 1))) (return)))
          unreachable)                                                       ;; 0xc1: never used
        (call $advance (i32.add (local.get $n) (i32.const 1)))               ;; $ext
        (return))
      (return))                                                              ;; $fixed
    (call $advance (local.get $n)))                                          ;; $sized

  (func $skip_n (param $n i32)
    (block $done
      (loop $more
        (br_if $done (i32.eqz (local.get $n)))
        (call $skip)
        (local.set $n (i32.sub (local.get $n) (i32.const 1)))
        (br $more))))

  ;; do $len bytes at $a equal $len bytes at $b?
  (func $equal (param $a i32) (param $b i32) (param $len i32) (result i32)
    (local $i i32)
    (block $done
      (loop $more
        (br_if $done (i32.ge_u (local.get $i) (local.get $len)))
        (if (i32.ne (i32.load8_u (i32.add (local.get $a) (local.get $i)))
                    (i32.load8_u (i32.add (local.get $b) (local.get $i))))
          (then (return (i32.const 0))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $more)))
    (i32.const 1))

  ;; read a string at $pos and say whether it equals the constant at $s ($slen bytes)
  (func $key_is (param $s i32) (param $slen i32) (result i32)
    (local $len i32) (local $at i32)
    (local.set $len (call $str_len))
    (if (i32.lt_s (local.get $len) (i32.const 0)) (then unreachable))   ;; keys must be strings
    (local.set $at (global.get $pos))
    (call $advance (local.get $len))
    (i32.and (i32.eq (local.get $len) (local.get $slen))
             (call $equal (local.get $at) (local.get $s) (local.get $len))))

  ;; ---- the request: which host served it ------------------------------------------------
  ;; Prefer header "x-meshhost-host" (a host may add it to name itself), else "host".
  (global $host_ptr (mut i32) (i32.const 0))
  (global $host_len (mut i32) (i32.const 0))
  (global $host_rank (mut i32) (i32.const 0))   ;; 0 none yet, 1 from "host", 2 from "x-meshhost-host"

  ;; read a string key at $pos; its rank: 2 "x-meshhost-host", 1 "host", 0 anything else
  (func $header_rank (result i32)
    (local $len i32) (local $at i32)
    (local.set $len (call $str_len))
    (if (i32.lt_s (local.get $len) (i32.const 0)) (then unreachable))   ;; keys must be strings
    (local.set $at (global.get $pos))
    (call $advance (local.get $len))
    (if (i32.and (i32.eq (local.get $len) (i32.const 15))
                 (call $equal (local.get $at) (i32.const 400) (i32.const 15)))
      (then (return (i32.const 2))))
    (i32.and (i32.eq (local.get $len) (i32.const 4))
             (call $equal (local.get $at) (i32.const 176) (i32.const 4))))

  (func $find_host (param $msg i32) (param $len i32)
    (local $n i32) (local $h i32) (local $rank i32) (local $values i32) (local $slen i32)
    (global.set $pos (local.get $msg))
    (global.set $end (i32.add (local.get $msg) (local.get $len)))
    (global.set $host_len (i32.const 0))
    (global.set $host_rank (i32.const 0))
    (local.set $n (call $map_len))
    (if (i32.lt_s (local.get $n) (i32.const 0)) (then unreachable))     ;; request must be a map
    (block $done
      (loop $fields
        (br_if $done (i32.eqz (local.get $n)))
        (local.set $n (i32.sub (local.get $n) (i32.const 1)))
        (if (i32.eqz (call $key_is (i32.const 160) (i32.const 6)))      ;; not "header"
          (then (call $skip) (br $fields)))
        ;; header: map of name -> list of values
        (local.set $h (call $map_len))
        (if (i32.lt_s (local.get $h) (i32.const 0)) (then unreachable))
        (block $headers_done
          (loop $headers
            (br_if $headers_done (i32.eqz (local.get $h)))
            (local.set $h (i32.sub (local.get $h) (i32.const 1)))
            (local.set $rank (call $header_rank))
            (if (i32.eqz (local.get $rank)) (then (call $skip) (br $headers)))
            (local.set $values (call $array_len))
            (if (i32.lt_s (local.get $values) (i32.const 0)) (then unreachable))
            (if (i32.eqz (local.get $values)) (then (br $headers)))
            (local.set $slen (call $str_len))
            (if (i32.lt_s (local.get $slen) (i32.const 0)) (then unreachable))
            (if (i32.gt_u (local.get $rank) (global.get $host_rank))
              (then (global.set $host_rank (local.get $rank))
                    (global.set $host_ptr (global.get $pos))
                    (global.set $host_len (local.get $slen))))
            (call $advance (local.get $slen))
            (call $skip_n (i32.sub (local.get $values) (i32.const 1)))   ;; further values
            (br $headers)))
        (br $fields))))

  ;; ---- building the answer ----------------------------------------------------------
  (global $out (mut i32) (i32.const 0))

  (func $put (param $b i32)
    (i32.store8 (global.get $out) (local.get $b))
    (global.set $out (i32.add (global.get $out) (i32.const 1))))

  (func $put_bytes (param $src i32) (param $len i32)
    (memory.copy (global.get $out) (local.get $src) (local.get $len))
    (global.set $out (i32.add (global.get $out) (local.get $len))))

  ;; decimal digits of a signed 32-bit number
  (func $put_int (param $v i32)
    (local $digits i32) (local $u i64)
    (local.set $u (i64.extend_i32_s (local.get $v)))
    (if (i64.lt_s (local.get $u) (i64.const 0))
      (then (call $put (i32.const 0x2d)) (local.set $u (i64.sub (i64.const 0) (local.get $u)))))
    ;; write digits backwards into 1024..1040, then copy them forwards
    (local.set $digits (i32.const 1040))
    (loop $more
      (local.set $digits (i32.sub (local.get $digits) (i32.const 1)))
      (i32.store8 (local.get $digits)
        (i32.add (i32.const 0x30) (i32.wrap_i64 (i64.rem_u (local.get $u) (i64.const 10)))))
      (local.set $u (i64.div_u (local.get $u) (i64.const 10)))
      (br_if $more (i64.ne (local.get $u) (i64.const 0))))
    (call $put_bytes (local.get $digits) (i32.sub (i32.const 1040) (local.get $digits))))

  ;; a JSON-safe copy: quotes, backslashes and control bytes become '?'
  (func $put_json_text (param $src i32) (param $len i32)
    (local $i i32) (local $b i32)
    (block $done
      (loop $more
        (br_if $done (i32.ge_u (local.get $i) (local.get $len)))
        (local.set $b (i32.load8_u (i32.add (local.get $src) (local.get $i))))
        (if (i32.or (i32.lt_u (local.get $b) (i32.const 0x20))
                    (i32.or (i32.eq (local.get $b) (i32.const 0x22)) (i32.eq (local.get $b) (i32.const 0x5c))))
          (then (local.set $b (i32.const 0x3f))))
        (call $put (local.get $b))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $more))))

  ;; the msgpack integer the key-value provider answered
  (func $read_int (param $ptr i32) (param $len i32) (result i32)
    (local $t i32)
    (global.set $pos (local.get $ptr))
    (global.set $end (i32.add (local.get $ptr) (local.get $len)))
    (local.set $t (call $byte))
    (if (i32.le_u (local.get $t) (i32.const 0x7f)) (then (return (local.get $t))))
    (if (i32.ge_u (local.get $t) (i32.const 0xe0)) (then (return (i32.sub (local.get $t) (i32.const 256)))))
    (if (i32.eq (local.get $t) (i32.const 0xcc)) (then (return (call $be (i32.const 1)))))
    (if (i32.eq (local.get $t) (i32.const 0xcd)) (then (return (call $be (i32.const 2)))))
    (if (i32.eq (local.get $t) (i32.const 0xce)) (then (return (call $be (i32.const 4)))))
    (if (i32.eq (local.get $t) (i32.const 0xd0))
      (then (return (i32.extend8_s (call $be (i32.const 1))))))
    (if (i32.eq (local.get $t) (i32.const 0xd1))
      (then (return (i32.extend16_s (call $be (i32.const 2))))))
    (if (i32.eq (local.get $t) (i32.const 0xd2)) (then (return (call $be (i32.const 4)))))
    (call $guest_error (i32.const 224) (i32.const 44))
    (i32.const 0x80000000))   ;; marker: not an integer

  ;; ---- the waPC entry point ------------------------------------------------------------
  (func (export "__guest_call") (param $op_len i32) (param $msg_len i32) (result i32)
    (local $msg i32) (local $scratch i32) (local $n i32) (local $count i32) (local $body i32)
    (local.set $msg (i32.add (global.get $REQ) (local.get $op_len)))
    ;; room for the request plus a host answer after it
    (local.set $scratch (i32.add (local.get $msg) (local.get $msg_len)))
    (call $grow_to (i32.add (local.get $scratch) (i32.const 65536)))
    (call $guest_request (global.get $REQ) (local.get $msg))

    (if (i32.eqz (i32.and (i32.eq (local.get $op_len) (i32.const 24))
                          (call $equal (global.get $REQ) (i32.const 16) (i32.const 24))))
      (then (call $guest_error (i32.const 192) (i32.const 17)) (return (i32.const 0))))

    (call $find_host (local.get $msg) (local.get $msg_len))

    ;; KeyValue.Increment {"key": "counter", "value": 1}
    (if (i32.eqz (call $host_call (i32.const 48) (i32.const 7) (i32.const 64) (i32.const 18)
                                  (i32.const 96) (i32.const 18) (i32.const 128) (i32.const 20)))
      (then
        (local.set $n (call $host_error_len))
        (call $grow_to (i32.add (local.get $scratch) (local.get $n)))
        (call $host_error (local.get $scratch))
        (call $guest_error (local.get $scratch) (local.get $n))
        (return (i32.const 0))))
    (local.set $n (call $host_response_len))
    (call $grow_to (i32.add (local.get $scratch) (local.get $n)))
    (call $host_response (local.get $scratch))
    (local.set $count (call $read_int (local.get $scratch) (local.get $n)))
    (if (i32.eq (local.get $count) (i32.const 0x80000000)) (then (return (i32.const 0))))

    ;; JSON body: {"count":<n>,"host":"<host>"}
    (global.set $out (global.get $JSON))
    (call $put_bytes (i32.const 352) (i32.const 9))
    (call $put_int (local.get $count))
    (call $put_bytes (i32.const 368) (i32.const 9))
    (if (i32.gt_u (global.get $host_len) (global.get $MAX_HOST))
      (then (global.set $host_len (global.get $MAX_HOST))))
    (call $put_json_text (global.get $host_ptr) (global.get $host_len))
    (call $put_bytes (i32.const 384) (i32.const 2))
    (local.set $body (i32.sub (global.get $out) (global.get $JSON)))

    ;; msgpack HttpResponse: fixed prefix, bin16 length, the JSON bytes
    (global.set $out (global.get $RESP))
    (call $put_bytes (i32.const 288) (i32.const 59))
    (call $put (i32.shr_u (local.get $body) (i32.const 8)))
    (call $put (i32.and (local.get $body) (i32.const 0xff)))
    (call $put_bytes (global.get $JSON) (local.get $body))
    (call $guest_response (global.get $RESP) (i32.sub (global.get $out) (global.get $RESP)))
    (i32.const 1))

  ;; grow memory so that byte $end exists; trap if the host refuses
  (func $grow_to (param $end i32)
    (local $pages i32)
    (local.set $pages (i32.sub (i32.shr_u (i32.add (local.get $end) (i32.const 65535)) (i32.const 16))
                               (memory.size)))
    (if (i32.gt_s (local.get $pages) (i32.const 0))
      (then (if (i32.eq (memory.grow (local.get $pages)) (i32.const -1)) (then unreachable)))))
)
