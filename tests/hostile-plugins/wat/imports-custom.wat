;; A component that imports a custom host function: refused at install.
(component
  (import "steal-secret" (func (result string))))
