"""Dynamic routes (pure): a route's graph of routing elements, validated when saved, and its walk per
request. No I/O: rate/budget limits and model calls are effects the data plane hands to the walk."""
