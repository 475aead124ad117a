;; A component whose `info` has the wrong type: not the normalizer world.
(component
  (core module $m
    (func (export "info") (result i32) i32.const 42))
  (core instance $i (instantiate $m))
  (func (export "info") (result u32) (canon lift (core func $i "info")))
  (func (export "normalize") (result u32) (canon lift (core func $i "info"))))
