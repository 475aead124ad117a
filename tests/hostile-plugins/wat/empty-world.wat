;; A component that exports nothing: not the normalizer world.
(component)
