;; A core WebAssembly module, not a component: refused at install.
(module
  (func (export "info") (result i32) i32.const 0)
  (memory (export "memory") 1))
