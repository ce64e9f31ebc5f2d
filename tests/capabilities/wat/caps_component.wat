;; A component of world meshhost:actor/actor that forwards every call to the key-value
;; capability: handle(operation, payload) = host.call("", "wasmcloud:keyvalue", operation,
;; payload), its result passed on as is.
(component
  (import "meshhost:actor/host@0.1.0" (instance $host
    (export "call" (func (param "binding" string) (param "namespace" string)
                         (param "operation" string) (param "payload" (list u8))
                         (result (result (list u8) (error string)))))
    (export "log" (func (param "level" string) (param "message" string)))))

  (core module $Libc
    (memory (export "memory") 1)
    (global $next (mut i32) (i32.const 4096))
    (func (export "realloc") (param $old i32) (param $old_size i32) (param $align i32)
                             (param $size i32) (result i32)
      (local $ptr i32) (local $pages i32)
      (local.set $ptr (i32.and (i32.add (global.get $next) (i32.const 7)) (i32.const -8)))
      (global.set $next (i32.add (local.get $ptr) (local.get $size)))
      (local.set $pages (i32.sub (i32.shr_u (i32.add (global.get $next) (i32.const 65535))
                                            (i32.const 16))
                                 (memory.size)))
      (if (i32.gt_s (local.get $pages) (i32.const 0))
        (then (if (i32.eq (memory.grow (local.get $pages)) (i32.const -1)) (then unreachable))))
      (local.get $ptr))
    (func (export "reset") (global.set $next (i32.const 4096))))
  (core instance $libc (instantiate $Libc))
  (alias core export $libc "memory" (core memory $mem))
  (alias core export $libc "realloc" (core func $realloc))

  (core func $call (canon lower (func $host "call") (memory $mem) (realloc $realloc)))

  (core module $Main
    (import "libc" "memory" (memory 1))
    (import "libc" "reset" (func $reset))
    (import "host" "call" (func $call (param i32 i32 i32 i32 i32 i32 i32 i32 i32)))
    (data (i32.const 64) "wasmcloud:keyvalue")
    ;; the result<list<u8>, string> is written at 16 by the host and lifted from there
    (func (export "handle") (param $op i32) (param $op_len i32) (param $p i32) (param $len i32)
                            (result i32)
      (call $call (i32.const 0) (i32.const 0) (i32.const 64) (i32.const 18)
                  (local.get $op) (local.get $op_len) (local.get $p) (local.get $len)
                  (i32.const 16))
      (i32.const 16))
    (func (export "post") (param i32) (call $reset)))
  (core instance $main (instantiate $Main
    (with "libc" (instance $libc))
    (with "host" (instance (export "call" (func $call))))))

  (func $handle (param "operation" string) (param "payload" (list u8))
                (result (result (list u8) (error string)))
    (canon lift (core func $main "handle") (memory $mem) (realloc $realloc)
                (post-return (core func $main "post"))))
  (instance $handler (export "handle" (func $handle)))
  (export "meshhost:actor/handler@0.1.0" (instance $handler)))
