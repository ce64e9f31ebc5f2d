;; A component that imports WASI 0.2 (wasi:random) besides nothing else: handle()
;; answers 8 random bytes.  realloc hands out one fixed buffer: the arguments are unused.
(component
  (import "wasi:random/random@0.2.0" (instance $random
    (export "get-random-u64" (func (result u64)))))
  (core module $Libc
    (memory (export "memory") 1)
    (func (export "realloc") (param i32 i32 i32 i32) (result i32) (i32.const 4096)))
  (core instance $libc (instantiate $Libc))
  (alias core export $libc "memory" (core memory $mem))
  (alias core export $libc "realloc" (core func $realloc))
  (core func $get (canon lower (func $random "get-random-u64")))
  (core module $Main
    (import "libc" "memory" (memory 1))
    (import "random" "get" (func $get (result i64)))
    (func (export "handle") (param i32 i32 i32 i32) (result i32)
      (i64.store (i32.const 64) (call $get))
      (i32.store8 (i32.const 16) (i32.const 0))
      (i32.store (i32.const 20) (i32.const 64))
      (i32.store (i32.const 24) (i32.const 8))
      (i32.const 16)))
  (core instance $main (instantiate $Main
    (with "libc" (instance $libc))
    (with "random" (instance (export "get" (func $get))))))
  (func $handle (param "operation" string) (param "payload" (list u8))
                (result (result (list u8) (error string)))
    (canon lift (core func $main "handle") (memory $mem) (realloc $realloc)))
  (instance $handler (export "handle" (func $handle)))
  (export "meshhost:actor/handler@0.1.0" (instance $handler)))
