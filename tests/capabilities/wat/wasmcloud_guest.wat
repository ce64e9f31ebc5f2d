;; A wasmCloud 0.x actor reduced to its ABI, in the shapes real toolchains produce.
;; Placeholders: MODULE (import module: wasmbus for wasmCloud actors, wapc for plain
;; waPC guests) and START (the init export: _start for AssemblyScript and TinyGo,
;; wapc_init for Rust waPC guests; any other name means "no init function").
;; It imports only three waPC functions, as some real actors do.  Until its init
;; function has run, every call fails with "No handler registered", as a real guest
;; whose host skipped the start call does.
;; Operations:
;;   HttpServer.HandleRequest  answers HttpResponse {statusCode: 200, header:
;;                             {content-type: [application/msgpack]}, body: <the
;;                             request bytes as received>} followed by a stray 0x00,
;;                             as one real AssemblyScript actor does
;;   anything else             echoes the payload
(module
  (import "MODULE" "__guest_request" (func $guest_request (param i32 i32)))
  (import "MODULE" "__guest_response" (func $guest_response (param i32 i32)))
  (import "MODULE" "__guest_error" (func $guest_error (param i32 i32)))
  (memory (export "memory") 2)

  (data (i32.const 16) "HttpServer.HandleRequest")
  (data (i32.const 48) "No handler registered")
  ;; {statusCode: 200, header: {content-type: [application/msgpack]}, body: bin32  (62 bytes)
  (data (i32.const 80) "\83\aastatusCode\cc\c8\a6header\81\accontent-type\91\b3application/msgpack\a4body\c6")

  (global $registered (mut i32) (i32.const 0))
  (global $REQ i32 (i32.const 65536))

  (func (export "START") (global.set $registered (i32.const 1)))

  (func $ensure (param $end i32)
    (local $pages i32)
    (local.set $pages (i32.sub (i32.shr_u (i32.add (local.get $end) (i32.const 65535)) (i32.const 16))
                               (memory.size)))
    (if (i32.gt_s (local.get $pages) (i32.const 0))
      (then (if (i32.eq (memory.grow (local.get $pages)) (i32.const -1)) (then unreachable)))))

  (func $is (param $len i32) (param $s i32) (param $slen i32) (result i32)
    (local $i i32)
    (if (i32.ne (local.get $len) (local.get $slen)) (then (return (i32.const 0))))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $len)))
        (if (i32.ne (i32.load8_u (i32.add (global.get $REQ) (local.get $i)))
                    (i32.load8_u (i32.add (local.get $s) (local.get $i))))
          (then (return (i32.const 0))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))
    (i32.const 1))

  (func (export "__guest_call") (param $op_len i32) (param $msg_len i32) (result i32)
    (local $msg i32) (local $end i32) (local $out i32)
    (local.set $msg (i32.add (global.get $REQ) (local.get $op_len)))
    (local.set $end (i32.add (local.get $msg) (local.get $msg_len)))
    (call $ensure (i32.add (local.get $end) (i32.add (local.get $msg_len) (i32.const 128))))
    (call $guest_request (global.get $REQ) (local.get $msg))
    (if (i32.eqz (global.get $registered))
      (then (call $guest_error (i32.const 48) (i32.const 21)) (return (i32.const 0))))
    (if (call $is (local.get $op_len) (i32.const 16) (i32.const 24))    ;; HandleRequest
      (then
        (memory.copy (local.get $end) (i32.const 80) (i32.const 62))
        (local.set $out (i32.add (local.get $end) (i32.const 62)))
        (i32.store8 (local.get $out) (i32.shr_u (local.get $msg_len) (i32.const 24)))
        (i32.store8 offset=1 (local.get $out) (i32.shr_u (local.get $msg_len) (i32.const 16)))
        (i32.store8 offset=2 (local.get $out) (i32.shr_u (local.get $msg_len) (i32.const 8)))
        (i32.store8 offset=3 (local.get $out) (local.get $msg_len))
        (memory.copy (i32.add (local.get $out) (i32.const 4)) (local.get $msg) (local.get $msg_len))
        (i32.store8 (i32.add (local.get $out) (i32.add (local.get $msg_len) (i32.const 4)))
                    (i32.const 0))
        (call $guest_response (local.get $end) (i32.add (local.get $msg_len) (i32.const 67)))
        (return (i32.const 1))))
    (call $guest_response (local.get $msg) (local.get $msg_len))
    (i32.const 1))
)
