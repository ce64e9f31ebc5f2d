;; pinger: a waPC actor (import module "wasmbus") that calls another actor.
;;
;; "Ping" calls operation "Record" of the actor whose call alias is
;; "examples/recorder" (binding "default") with its own payload, and answers
;; what that call answered; a failed call (no link to the recorder, no
;; recorder running) becomes its error, with the host's reason.  Any other
;; operation answers the guest error "unknown operation".
;;
;; Memory map: 0..1023 constants, 1024.. request, then the answer after it.
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
  (memory (export "memory") 1)
  (data (i32.const 16) "Ping")                           ;; 4
  (data (i32.const 32) "default")                        ;; 7
  (data (i32.const 48) "examples/recorder")              ;; 17
  (data (i32.const 80) "Record")                         ;; 6
  (data (i32.const 96) "unknown operation")              ;; 17
  (global $REQ i32 (i32.const 1024))

  ;; Make memory reach at least $end bytes.
  (func $fit (param $end i32)
    (local $pages i32)
    (local.set $pages (i32.sub (i32.shr_u (i32.add (local.get $end) (i32.const 65535))
                                          (i32.const 16))
                               (memory.size)))
    (if (i32.gt_s (local.get $pages) (i32.const 0))
      (then (if (i32.eq (memory.grow (local.get $pages)) (i32.const -1)) (then unreachable)))))

  (func (export "__guest_call") (param $op_len i32) (param $msg_len i32) (result i32)
    (local $msg i32) (local $out i32) (local $len i32)
    (local.set $msg (i32.add (global.get $REQ) (local.get $op_len)))
    (local.set $out (i32.add (local.get $msg) (local.get $msg_len)))
    (call $fit (local.get $out))
    (call $guest_request (global.get $REQ) (local.get $msg))
    (if (i32.eqz (i32.and (i32.eq (local.get $op_len) (i32.const 4))
                          (i32.eq (i32.load (global.get $REQ)) (i32.load (i32.const 16)))))
      (then
        (call $guest_error (i32.const 96) (i32.const 17))
        (return (i32.const 0))))
    (if (call $host_call (i32.const 32) (i32.const 7) (i32.const 48) (i32.const 17)
                         (i32.const 80) (i32.const 6) (local.get $msg) (local.get $msg_len))
      (then
        (local.set $len (call $host_response_len))
        (call $fit (i32.add (local.get $out) (local.get $len)))
        (call $host_response (local.get $out))
        (call $guest_response (local.get $out) (local.get $len))
        (return (i32.const 1))))
    (local.set $len (call $host_error_len))
    (call $fit (i32.add (local.get $out) (local.get $len)))
    (call $host_error (local.get $out))
    (call $guest_error (local.get $out) (local.get $len))
    (i32.const 0))
)
