;; echo: the smallest useful waPC actor (import module "wasmbus").
;;
;; Operation "Echo" answers the request payload unchanged; any other
;; operation answers the guest error "unknown operation".  Used by
;; `meshhost demo` and `bench/invoke.py` to measure the cost of an
;; invocation itself.  Memory grows to fit the request.
(module
  (import "wasmbus" "__guest_request" (func $guest_request (param i32 i32)))
  (import "wasmbus" "__guest_response" (func $guest_response (param i32 i32)))
  (import "wasmbus" "__guest_error" (func $guest_error (param i32 i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "Echo")
  (data (i32.const 32) "unknown operation")
  (global $REQ i32 (i32.const 1024))

  (func (export "__guest_call") (param $op_len i32) (param $msg_len i32) (result i32)
    (local $end i32) (local $pages i32)
    (local.set $end (i32.add (global.get $REQ) (i32.add (local.get $op_len) (local.get $msg_len))))
    ;; grow memory until the operation and the payload fit
    (local.set $pages (i32.sub (i32.shr_u (i32.add (local.get $end) (i32.const 65535))
                                          (i32.const 16))
                               (memory.size)))
    (if (i32.gt_s (local.get $pages) (i32.const 0))
      (then (if (i32.eq (memory.grow (local.get $pages)) (i32.const -1)) (then unreachable))))
    (call $guest_request (global.get $REQ) (i32.add (global.get $REQ) (local.get $op_len)))
    (if (i32.and (i32.eq (local.get $op_len) (i32.const 4))
                 (i32.eq (i32.load (global.get $REQ)) (i32.load (i32.const 16))))
      (then
        (call $guest_response (i32.add (global.get $REQ) (local.get $op_len))
                              (local.get $msg_len))
        (return (i32.const 1))))
    (call $guest_error (i32.const 32) (i32.const 17))
    (i32.const 0))
)
