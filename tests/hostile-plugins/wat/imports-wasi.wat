;; A component that imports a WASI interface: refused at install.
(component
  (import "wasi:cli/environment@0.2.0" (instance
    (export "get-environment" (func (result (list (tuple string string))))))))
