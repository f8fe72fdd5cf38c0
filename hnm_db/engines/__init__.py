"""Engines that run a stage's heavy step elsewhere (Ray), behind the hooks the stages define: mining's
``Scorer``, embedding's runner, clustering's assigner. The DuckDB file keeps one writer: an engine
returns results, the stage writes them."""
