# From /work/shared/seeds (L7 traffic management docs):
# splitter[A]: A_v1=50%, A_v2=50%
Kind = "service-splitter"
Name = "a"
Splits = [
  { Weight = 50, ServiceSubset = "v1" },
  { Weight = 50, ServiceSubset = "v2" },
]
