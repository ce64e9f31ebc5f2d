;; recorder: a waPC actor (import module "wasmbus") that records what it is sent.
;;
;; "Record" answers its payload unchanged (another actor calls it through an
;; actor-to-actor link; its call alias is "examples/recorder");
;; "Messaging.HandleMessage" (a message on a wasmcloud:messaging subscription)
;; answers nothing.  Either adds one to the count that "Count" answers, as a
;; msgpack uint32 (per instance: each instance counts what it saw).  Any other
;; operation answers the guest error "unknown operation".
;;
;; Memory map: 0..1023 constants, 1024.. request (memory grows to fit it).
(module
  (import "wasmbus" "__guest_request" (func $guest_request (param i32 i32)))
  (import "wasmbus" "__guest_response" (func $guest_response (param i32 i32)))
  (import "wasmbus" "__guest_error" (func $guest_error (param i32 i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "Record")                         ;; 6
  (data (i32.const 32) "Messaging.HandleMessage")        ;; 23
  (data (i32.const 64) "Count")                          ;; 5
  (data (i32.const 80) "unknown operation")              ;; 17
  (global $REQ i32 (i32.const 1024))
  (global $count (mut i32) (i32.const 0))

  ;; 1 when the operation (at $REQ, $op_len bytes) is the constant at $at ($len bytes).
  (func $is (param $op_len i32) (param $at i32) (param $len i32) (result i32)
    (local $i i32)
    (if (i32.ne (local.get $op_len) (local.get $len)) (then (return (i32.const 0))))
    (block $differ
      (loop $next
        (br_if $differ (i32.ge_u (local.get $i) (local.get $len)))
        (if (i32.ne (i32.load8_u (i32.add (global.get $REQ) (local.get $i)))
                    (i32.load8_u (i32.add (local.get $at) (local.get $i))))
          (then (return (i32.const 0))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))
    (i32.const 1))

  (func (export "__guest_call") (param $op_len i32) (param $msg_len i32) (result i32)
    (local $end i32) (local $pages i32)
    (local.set $end (i32.add (global.get $REQ) (i32.add (local.get $op_len) (local.get $msg_len))))
    (local.set $pages (i32.sub (i32.shr_u (i32.add (local.get $end) (i32.const 65535))
                                          (i32.const 16))
                               (memory.size)))
    (if (i32.gt_s (local.get $pages) (i32.const 0))
      (then (if (i32.eq (memory.grow (local.get $pages)) (i32.const -1)) (then unreachable))))
    (call $guest_request (global.get $REQ) (i32.add (global.get $REQ) (local.get $op_len)))
    (if (call $is (local.get $op_len) (i32.const 16) (i32.const 6))
      (then
        (global.set $count (i32.add (global.get $count) (i32.const 1)))
        (call $guest_response (i32.add (global.get $REQ) (local.get $op_len))
                              (local.get $msg_len))
        (return (i32.const 1))))
    (if (call $is (local.get $op_len) (i32.const 32) (i32.const 23))
      (then
        (global.set $count (i32.add (global.get $count) (i32.const 1)))
        (call $guest_response (i32.const 0) (i32.const 0))
        (return (i32.const 1))))
    (if (call $is (local.get $op_len) (i32.const 64) (i32.const 5))
      (then
        ;; msgpack uint32: 0xce then the count big-endian, at 0..4
        (i32.store8 (i32.const 0) (i32.const 0xce))
        (i32.store8 (i32.const 1) (i32.shr_u (global.get $count) (i32.const 24)))
        (i32.store8 (i32.const 2) (i32.shr_u (global.get $count) (i32.const 16)))
        (i32.store8 (i32.const 3) (i32.shr_u (global.get $count) (i32.const 8)))
        (i32.store8 (i32.const 4) (global.get $count))
        (call $guest_response (i32.const 0) (i32.const 5))
        (return (i32.const 1))))
    (call $guest_error (i32.const 80) (i32.const 17))
    (i32.const 0))
)
