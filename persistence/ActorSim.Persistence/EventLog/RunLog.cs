using System.Text.Json;
using ActorSim.Domain;
using ActorSim.Persistence.Journal;
using ActorSim.Persistence.ReadSide;
using ActorSim.Persistence.Serialization;
using Marten;

namespace ActorSim.Persistence.EventLog;

/// <summary>One event of a run in global order: stream without the run prefix, its version, the
/// domain event, and the time it was written (UTC ticks).</summary>
public sealed record RunEvent(long Seq, string Stream, long Version, IDomainEvent Event, long TimestampTicks)
{
    public string Type => DomainEventSerializer.AliasOf(Event.GetType());
}

/// <summary>Reads a run's events from the database in global order (the run is finished or its
/// events are read as they stand; numbering restarts at 1 for the run).</summary>
public static class RunLog
{
    public static async Task<RunInfo?> InfoAsync(IDocumentStore store, string run, CancellationToken ct = default)
    {
        await using var session = store.QuerySession();
        return await session.LoadAsync<RunInfo>(run, ct);
    }

    public static async Task<IReadOnlyList<RunInfo>> RunsAsync(IDocumentStore store, CancellationToken ct = default)
    {
        await using var session = store.QuerySession();
        return (await session.Query<RunInfo>().ToListAsync(ct)).OrderBy(r => r.Started).ThenBy(r => r.Id, StringComparer.Ordinal).ToList();
    }

    /// <summary>The run's events in global order. Read with one SQL query straight from Marten's event
    /// table, rows streamed as PostgreSQL produces them (it works on the next rows while these are
    /// decoded), the stored <see cref="JournalEntry"/> taken apart by PostgreSQL and the domain event's
    /// JSON handed to the serializer as UTF-8 — rather than pages of Marten's event query, which
    /// deserialized each whole entry and then the event again (bench, replay from the database).
    /// An imported run comes back in the order of the file it was imported from
    /// (<see cref="ReadImportedAsync"/>).</summary>
    public static async IAsyncEnumerable<RunEvent> ReadAsync(IDocumentStore store, string run, [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken ct = default)
    {
        var prefix = run + "/";
        var schema = store.Options.Events.DatabaseSchemaName;
        long n = 0;
        List<(long LogSeq, RunEvent Event)>? imported = null;
        await using var session = store.QuerySession();
        var conn = await session.OpenConnectionAsync(ct);
        var (first, firstImported) = await FirstSeqAsync(conn, schema, prefix, ct);
        if (firstImported)
        {
            await foreach (var ev in ReadImportedAsync(conn, schema, prefix, ct)) yield return ev with { Seq = ++n };
            yield break;
        }
        // The rows must come in seq_id order as they are read, by the primary key: PostgreSQL, which
        // guesses that few rows match starts_with, chose a bitmap scan and then sorted the whole run
        // before its first row (50,000 rows: 56 MB sorted on disk, 232 ms against 165 ms by the index,
        // EXPLAIN ANALYZE; 83–98 k decisions/s in the bench's replay of a recorded run). Sorting is
        // turned off for this query only (after FirstSeqAsync, whose plan needs its sort), and back on
        // when the read ends: the pool keeps a connection's settings (No Reset On Close).
        await using (var noSort = new Npgsql.NpgsqlCommand("set enable_sort = off", conn)) await noSort.ExecuteNonQueryAsync(ct);
        try
        {
            await using var cmd = new Npgsql.NpgsqlCommand(
                $"select {Columns} from {schema}.mt_events e {Entry} " +
                "where e.seq_id >= @first and starts_with(e.stream_id, @prefix) and e.is_archived = false " +
                $"and {Kept} order by e.seq_id", conn);
            cmd.Parameters.AddWithValue("first", first);
            cmd.Parameters.AddWithValue("prefix", prefix);
            await using var reader = await cmd.ExecuteReaderAsync(ct);
            var buffer = new RowBuffer();
            while (await reader.ReadAsync(ct))
            {
                if (Decode(reader, prefix, buffer) is not var (logSeq, ev)) continue; // rejected or not a domain event
                if (logSeq > 0) (imported ??= []).Add((logSeq, ev));
                else yield return ev with { Seq = ++n };
            }
            // Imported events in a run that did not begin with one (not written by `import`, which makes
            // whole runs): after the others, in the order of their file.
            if (imported is not null)
                foreach (var (_, ev) in imported.OrderBy(x => x.LogSeq)) yield return ev with { Seq = ++n };
        }
        finally
        {
            // A connection that broke mid-read is not given back to the pool: nothing to reset there.
            if (conn.State == System.Data.ConnectionState.Open)
            {
                await using var reset = new Npgsql.NpgsqlCommand("reset enable_sort", conn);
                await reset.ExecuteNonQueryAsync(CancellationToken.None);
            }
        }
    }

    // The row as RunLog reads it. An entry stored binary (bdata, JournalEntryBinary) comes as it is
    // and is taken apart here; one stored as JSON (before that format) is taken apart by PostgreSQL
    // once per row (each data->>'…' would read the whole jsonb again), the domain event as text. The
    // function is called for JSON rows only: "offset 0" keeps the bdata test a one-time filter above
    // it (without it PostgreSQL pulls the test up into the join and calls the function for every row:
    // ~5 % of its time in a replay of binary entries, perf).
    private const string Columns =
        "e.stream_id, e.version, e.timestamp, j.\"Type\", j.\"SchemaVersion\", j.\"Timestamp\", coalesce(j.\"LogSeq\", 0), j.\"Data\"::text, e.bdata";
    private const string Entry =
        "left join lateral (select * from jsonb_to_record(e.data) as r(\"Type\" text, \"SchemaVersion\" int, \"Timestamp\" bigint, \"LogSeq\" bigint, \"Rejected\" boolean, \"Data\" jsonb) " +
        "where e.bdata is null offset 0) j on true";
    // A binary entry's own fields are checked when it is decoded.
    private const string Kept = "(e.bdata is not null or j.\"Type\" is not null and coalesce(j.\"Rejected\", false) = false)";

    /// <summary>One row of <see cref="Columns"/>: the event (numbered 0) and its place in an imported
    /// file (0 if none); null for a binary entry that is rejected or not a domain event.</summary>
    private static (long LogSeq, RunEvent Event)? Decode(Npgsql.NpgsqlDataReader reader, string prefix, RowBuffer buffer)
    {
        try
        {
            return DecodeRow(reader, prefix, buffer);
        }
        catch (Exception e) when (e is InvalidDataException or JsonException or ArgumentException or InvalidOperationException or FormatException)
        {
            throw new StoredEventException(reader.GetString(0), reader.GetInt64(1), e.Message, e);
        }
    }

    private static (long LogSeq, RunEvent Event)? DecodeRow(Npgsql.NpgsqlDataReader reader, string prefix, RowBuffer buffer)
    {
        IDomainEvent e;
        long ticks, logSeq;
        if (!reader.IsDBNull(8))
        {
            // Copied into a buffer kept for the whole read, and read where it lies (JournalEntryBinary.View):
            // a fresh array per row and the entry object around it were ~a fifth of a replay's time.
            var length = (int)reader.GetBytes(8, 0, null, 0, 0);
            if (buffer.Bytes.Length < length) buffer.Bytes = new byte[Math.Max(length, 2 * buffer.Bytes.Length)];
            reader.GetBytes(8, 0, buffer.Bytes, 0, length);
            var entry = JournalEntryBinary.View(buffer.Bytes.AsSpan(0, length));
            if (entry.Rejected || entry.Type is null || !entry.HasData) return null;
            (ticks, logSeq) = (entry.Timestamp, entry.LogSeq);
            e = entry.Event();
        }
        else
        {
            // The text's UTF-8 bytes as they came, no string in between; a packed event (a string) unpacked.
            (ticks, logSeq) = (reader.IsDBNull(5) ? 0 : reader.GetInt64(5), reader.GetInt64(6));
            e = DomainEventSerializer.FromUtf8(reader.GetString(3), reader.IsDBNull(4) ? 0 : reader.GetInt32(4), EventData.Utf8Of(reader.GetFieldValue<byte[]>(7)));
        }
        // The journal stamps each entry with the simulation's time; an entry of a build before that has
        // 0, and then the time Marten stored it is used.
        if (ticks == 0) ticks = reader.GetFieldValue<DateTimeOffset>(2).UtcTicks;
        return (logSeq, new RunEvent(0, buffer.Stream(reader.GetString(0), prefix), reader.GetInt64(1), e, ticks));
    }

    /// <summary>What one read reuses from row to row: the bytes of a binary entry, and the last stream's
    /// name without the run's prefix (consecutive rows are mostly of one stream).</summary>
    private sealed class RowBuffer
    {
        public byte[] Bytes = new byte[4096];
        private string? _id, _stream;

        public string Stream(string id, string prefix)
        {
            if (id != _id) (_id, _stream) = (id, id[prefix.Length..]);
            return _stream!;
        }
    }

    /// <summary>An imported run in the order of its file. The import appended the file's events stream
    /// by stream (Marten groups a session's appends by stream), so in global order they are one sorted
    /// run per stream; they are merged by their place in the file (LogSeq), each stream read a page at
    /// a time in version order, the next page of one stream read ahead while the caller replays.
    /// Memory: about a page per stream, not the whole run (which was read whole
    /// and sorted before: every decoded event of a large import alive at once).</summary>
    private static async IAsyncEnumerable<RunEvent> ReadImportedAsync(Npgsql.NpgsqlConnection conn, string schema, string prefix,
        [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken ct)
    {
        var streams = new List<string>();
        await using (var list = new Npgsql.NpgsqlCommand($"select id from {schema}.mt_streams where starts_with(id, @prefix) order by id", conn))
        {
            list.Parameters.AddWithValue("prefix", prefix);
            await using var r = await list.ExecuteReaderAsync(ct);
            while (await r.ReadAsync(ct)) streams.Add(r.GetString(0));
        }
        // A page is a window of versions (a stream's versions run 1, 2, 3, … without gaps, archived
        // events included), so it holds at most a page of rows however PostgreSQL plans it. With
        // "order by version limit" instead, a plan made before the table had statistics took apart
        // or sorted every remaining row of the stream for each page (240 ms for the first page of
        // 2,000 against 2 ms by the index): 7–25 k decisions/s in half the bench runs.
        await using var page = new Npgsql.NpgsqlCommand(
            $"select {Columns}, not e.is_archived and {Kept} from (select * from {schema}.mt_events " +
            $"where stream_id = @stream and version > @after and version <= @after + {ImportPage}) e {Entry} order by e.version", conn);
        var pStream = page.Parameters.Add("stream", NpgsqlTypes.NpgsqlDbType.Text);
        var pAfter = page.Parameters.Add("after", NpgsqlTypes.NpgsqlDbType.Bigint);
        var pending = new Queue<(long LogSeq, RunEvent Event)>[streams.Count];
        var after = new long[streams.Count];
        var done = new bool[streams.Count];
        var next = new PriorityQueue<int, long>(); // stream index by the LogSeq of its next event

        // One page read ahead on the connection (the next of the stream just taken from, once it is
        // down to a quarter of a page), fetched and decoded while the caller replays what is queued;
        // only one command runs on a connection at a time, so a page read now first waits for it.
        // Without it PostgreSQL and the decoding waited for each page's replay, and the replay for them.
        Task? ahead = null;
        var buffers = new[] { new RowBuffer(), new RowBuffer() }; // the page read now's, the one read ahead's

        async Task Fill(int s, RowBuffer buffer)
        {
            pStream.Value = streams[s];
            pAfter.Value = after[s];
            var q = new Queue<(long, RunEvent)>(ImportPage);
            var rows = 0;
            var last = after[s];
            await using (var r = await page.ExecuteReaderAsync(ct))
                while (await r.ReadAsync(ct))
                {
                    rows++;
                    last = r.GetInt64(1);
                    // else archived, rejected or not a domain event
                    if (r.GetBoolean(9) && Decode(r, prefix, buffer) is { } ev) q.Enqueue(ev);
                }
            Page(s, q, last, rows < ImportPage);
        }

        // A page read: its rows after what the stream has queued. Under a lock: a page read ahead
        // ends on another thread while the caller takes from the queues (so every use of them locks).
        var pages = new Lock();
        void Page(int s, Queue<(long, RunEvent)> q, long last, bool end)
        {
            lock (pages)
            {
                after[s] = last;
                done[s] = end;
                if (pending[s] is not { } held) pending[s] = q;
                else foreach (var x in q) held.Enqueue(x);
            }
        }

        bool Ready(int s)
        {
            lock (pages) return pending[s] is { Count: > 0 } || done[s];
        }

        // The stream's next event into the merge, reading pages until one has an event it keeps or the
        // stream ends (a page may hold only skipped rows). The page read ahead first, if any: it may be
        // this stream's, and the connection runs one command at a time.
        async Task Refill(int s)
        {
            while (!Ready(s))
            {
                if (ahead is { } a)
                {
                    ahead = null;
                    await a;
                }
                else await Fill(s, buffers[0]);
            }
            lock (pages)
                if (pending[s].TryPeek(out var head)) next.Enqueue(s, head.LogSeq);
        }

        try
        {
            for (var s = 0; s < streams.Count; s++) await Refill(s);
            while (next.TryDequeue(out var s, out _))
            {
                RunEvent ev;
                bool low;
                lock (pages)
                {
                    ev = pending[s].Dequeue().Event;
                    low = pending[s].Count <= ImportPage / 4 && !done[s];
                }
                if (low && ahead is null) ahead = Fill(s, buffers[1]);
                yield return ev;
                await Refill(s);
            }
        }
        finally
        {
            // A page still being read ahead when the caller stops early (or a read failed): its reader
            // ends before the command and the connection are disposed. What it found is not wanted.
            if (ahead is { } a) await a.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        }
    }

    private const int ImportPage = 2000;

    /// <summary>Where the run's events begin in global order — the first event of any of its streams (a
    /// stream's versions start at 1; events are never removed) — and whether that event came from an
    /// import. Reading from there instead of from the beginning keeps the first page from scanning
    /// every earlier run's events (3.5 M rows in the bench schema took 2 s before the first of a run's
    /// events came back).</summary>
    private static async Task<(long First, bool Imported)> FirstSeqAsync(Npgsql.NpgsqlConnection conn, string schema, string prefix, CancellationToken ct)
    {
        await using var cmd = new Npgsql.NpgsqlCommand(
            $"select e.seq_id, coalesce((e.data->>'LogSeq')::bigint, 0) > 0, e.bdata from {schema}.mt_streams s " +
            $"join {schema}.mt_events e on e.stream_id = s.id and e.version = 1 where starts_with(s.id, @prefix) order by e.seq_id limit 1", conn);
        cmd.Parameters.AddWithValue("prefix", prefix);
        await using var r = await cmd.ExecuteReaderAsync(ct);
        if (!await r.ReadAsync(ct)) return (long.MaxValue, false);
        return (r.GetInt64(0), r.IsDBNull(2) ? r.GetBoolean(1) : JournalEntryBinary.View(r.GetFieldValue<byte[]>(2)).LogSeq > 0);
    }

    /// <summary>Whether the database has a run of this id: its run record, or any stream of it. The
    /// streams are looked for in <c>mt_streams</c> (a row per actor), not in the events: with 6 M events
    /// in the database a scan of <c>mt_events</c> took ~4 s at every <c>actorsim run</c>'s start.</summary>
    public static async Task<bool> RunExistsAsync(IDocumentStore store, string run, CancellationToken ct = default)
    {
        await using var session = store.QuerySession();
        if (await session.LoadAsync<RunInfo>(run, ct) is not null) return true;
        var conn = await session.OpenConnectionAsync(ct);
        await using var cmd = new Npgsql.NpgsqlCommand(
            $"select exists(select 1 from {store.Options.Events.DatabaseSchemaName}.mt_streams where starts_with(id, @prefix))", conn);
        cmd.Parameters.AddWithValue("prefix", run + "/");
        return (bool)(await cmd.ExecuteScalarAsync(ct))!;
    }

    /// <summary>Writes a run's events as an import does (each with its place in the file), in one
    /// transaction, <paramref name="chunk"/> events a session at a time as they are enumerated, so a file
    /// of any length is imported in the same memory (the whole run in one session took ~3 KB an event,
    /// 300 MB for 94 k, and one SaveChanges of 534 k events outran Npgsql's command timeout). Each
    /// stream's events must come in version order, as they do in an event log. Nothing is committed
    /// unless every event was written: an exception from the enumeration (a line of the file that does
    /// not read) or from the database rolls the whole import back.</summary>
    public static async Task<long> WriteAsync(IDocumentStore store, RunInfo info, IEnumerable<RunEvent> events, int chunk = 10_000, CancellationToken ct = default)
    {
        await using var conn = store.Options.Tenancy.Default.Database.CreateConnection();
        await conn.OpenAsync(ct);
        await using var tx = await conn.BeginTransactionAsync(ct);
        var written = 0L;
        var pending = new List<RunEvent>(chunk);
        var first = true;
        async Task Flush()
        {
            await using var session = store.LightweightSession(Marten.Services.SessionOptions.ForTransaction(tx));
            if (first) session.Store(info);
            first = false;
            foreach (var stream in pending.GroupBy(e => e.Stream, StringComparer.Ordinal))
            {
                var entries = stream.Select(e => (object)JournalEntry.ForEvent(e.Event, "import", e.TimestampTicks, e.Seq)).ToArray();
                // The expected version is the stream's after the append (its last event's).
                session.Events.Append($"{info.Id}/{stream.Key}", stream.Last().Version, entries);
            }
            await session.SaveChangesAsync(ct);
            written += pending.Count;
            pending.Clear();
        }
        foreach (var e in events)
        {
            pending.Add(e);
            if (pending.Count == chunk) await Flush();
        }
        if (pending.Count > 0 || first) await Flush();
        await tx.CommitAsync(ct);
        return written;
    }

    /// <summary>Deletes runs whole, in one transaction (all of them or nothing): their events and
    /// streams (every stream "RUN/…", found in <c>mt_streams</c>, its events by the (stream_id, version)
    /// index), their snapshots and journal metadata (keyed by those persistence ids), their read side
    /// (decision rows, batch rows, violation rows) and their run record. A run id is matched whole, never
    /// as a pattern: "a" does not take "a-check", and '_' or '%' in an id are plain characters.
    /// Events of another run are never touched. A run that a process is writing (<see cref="RunLock"/>)
    /// is refused (<see cref="RunInUseException"/>), and nothing is deleted; with <paramref name="skipInUse"/>
    /// it is left out instead (the result does not name it), and the others go.</summary>
    public static async Task<IReadOnlyList<DeletedRun>> DeleteAsync(IDocumentStore store, IReadOnlyList<string> runs, bool skipInUse = false, CancellationToken ct = default)
    {
        var events = store.Options.Events.DatabaseSchemaName;
        var docs = store.Options.DatabaseSchemaName;
        await using var conn = store.Options.Tenancy.Default.Database.CreateConnection();
        await conn.OpenAsync(ct);
        await using var tx = await conn.BeginTransactionAsync(ct);
        async Task<long> Scalar(string sql, params (string Name, object Value)[] parameters)
        {
            await using var cmd = new Npgsql.NpgsqlCommand(sql, conn, tx);
            foreach (var (name, value) in parameters) cmd.Parameters.AddWithValue(name, value);
            return Convert.ToInt64(await cmd.ExecuteScalarAsync(ct) ?? 0L, System.Globalization.CultureInfo.InvariantCulture);
        }
        // The read side's tables are made on the first write that needs them: a database may lack some.
        async Task<bool> Exists(string table) => await Scalar("select count(*) from (select to_regclass(@t) as t) x where x.t is not null", ("t", table)) > 0;
        var deleted = new List<DeletedRun>();
        foreach (var run in runs)
        {
            // Held until the transaction ends: no run starts writing under this id meanwhile either.
            if (await Scalar($"select case when pg_try_advisory_xact_lock({RunLock.Key}) then 1 else 0 end", ("run", run)) == 0)
            {
                if (skipInUse) continue;
                throw new RunInUseException(run);
            }
            var streams = new List<string>();
            await using (var list = new Npgsql.NpgsqlCommand($"select id from {events}.mt_streams where starts_with(id, @prefix)", conn, tx))
            {
                list.Parameters.AddWithValue("prefix", run + "/");
                await using var r = await list.ExecuteReaderAsync(ct);
                while (await r.ReadAsync(ct)) streams.Add(r.GetString(0));
            }
            var ids = streams.ToArray();
            var eventCount = await Scalar($"with d as (delete from {events}.mt_events where stream_id = any(@ids) returning 1) select count(*) from d", ("ids", ids));
            await Scalar($"with d as (delete from {events}.mt_streams where id = any(@ids) returning 1) select count(*) from d", ("ids", ids));
            long decisions = 0;
            if (await Exists($"{docs}.{DecisionRows.TableName}"))
                decisions += await Scalar($"with d as (delete from {docs}.{DecisionRows.TableName} where run = @run returning 1) select count(*) from d", ("run", run));
            if (await Exists($"{docs}.{DecisionRows.EventsTableName}"))
                decisions += await Scalar($"with d as (delete from {docs}.{DecisionRows.EventsTableName} where run = @run returning cardinality(vm) as n) " +
                    "select coalesce(sum(n), 0) from d", ("run", run));
            // Before mt_decision_rows, decisions were documents (DecisionRows copies them over once).
            if (await Exists($"{docs}.mt_doc_decisionrow"))
                await Scalar($"with d as (delete from {docs}.mt_doc_decisionrow where data->>'Run' = @run returning 1) select count(*) from d", ("run", run));
            await using (var session = store.LightweightSession(Marten.Services.SessionOptions.ForTransaction(tx)))
            {
                session.DeleteWhere<SnapshotDocument>(x => x.PersistenceId.IsOneOf(ids));
                session.DeleteWhere<JournalMetadata>(x => x.Id.IsOneOf(ids));
                session.DeleteWhere<ViolationRow>(x => x.Run == run);
                session.Delete<RunInfo>(run);
                await session.SaveChangesAsync(ct);
            }
            deleted.Add(new DeletedRun(run, ids.Length, eventCount, decisions));
        }
        await tx.CommitAsync(ct);
        return deleted;
    }
}

/// <summary>A run a process is writing (it holds the run's <see cref="RunLock"/>).</summary>
public sealed class RunInUseException(string run) : Exception($"run '{run}' is being written by a running actorsim")
{
    public string Run { get; } = run;
}

/// <summary>What <see cref="RunLog.DeleteAsync"/> removed of a run: its streams (one per actor), their
/// events, and its decisions on the read side.</summary>
public sealed record DeletedRun(string Run, long Streams, long Events, long Decisions);
