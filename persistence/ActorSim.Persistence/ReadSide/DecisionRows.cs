using ActorSim.Domain.Kernel;
using Marten;
using Npgsql;
using NpgsqlTypes;
using Weasel.Core;
using Weasel.Postgresql;
using Weasel.Postgresql.Tables;

namespace ActorSim.Persistence.ReadSide;

/// <summary>The decision history tables: one typed row per single stage-2 fault decision
/// (<c>mt_decision_rows</c>) and one per batch event (<c>mt_decision_events</c>, below), written by
/// <see cref="DecisionProjection"/> in the append's transaction and read with plain SQL.
/// <para>A table of columns, not a Marten document (a jsonb body per row): in a durable bench the
/// document rows cost PostgreSQL about as much as the journal's own events — the rows' JSON parsed
/// from text, split with <c>jsonb_array_elements</c>, patched with <c>jsonb_set</c>, and two
/// expression indexes evaluated on the jsonb (docs/BENCHMARKS.md). Here an event's rows go in one
/// <c>insert … select from unnest(…)</c> of typed arrays, which Npgsql sends in binary.</para>
/// <para>One index, on (run, global_seq, idx): it serves a run's history in the order it is read (and a
/// VM's or a page's, filtered from it) and its counts. A run's rows arrive in global order, so each
/// goes in at the right end of its run's range of the index — the same few leaf pages, filled before
/// they split. The index this table had until the night of 2026-11-27, on (run, vm, gpa_page), took each row at
/// its VM's and page's place instead: with 8 VMs x 128 vCPUs each on its own GPA range, 1,024 places
/// in the index, each leaf split half-empty. 300,000 rows in batches of 300 after 450,000 (two
/// alternations, psql): 2.4 / 3.2 s with it, 1.4 / 1.7 s with this one, 0.8 s with none; the index
/// 100 MB against 49 MB. Marten's schema management replaces it on a table an earlier build made.
/// A page's history (<see cref="ForRunAsync"/> with a page) is now the run's rows filtered, not an
/// index range; no command reads it (<c>explain</c> reads the events).</para>
/// <para>No key:
/// a row's (stream, version, idx) is unique because its event is — the rows go in with the event's
/// append, in the same transaction, and mt_events is unique on (stream_id, version). The key this
/// table had, on those three columns (two long texts), cost PostgreSQL about half of each row's
/// insert (a bulk insert here: 4.7 µs a row with it and the index, 2.4 with the index alone); without
/// it, side by side (bench --quick, two alternations): 4 VMs x 64 vCPUs durable 41.0 / 38.0 k → 53.1 /
/// 47.9 k decisions/s, PersistAll 23.1 / 29.8 k → 29.2 / 34.4 k events/s. Marten's schema management
/// drops the key from a table an earlier build made.</para>
/// <para>A batch event's decisions (<c>stage2_faults_resolved</c>, 2–256 of them) are one row of a
/// second table, <c>mt_decision_events</c> (<see cref="EventsTable"/>), each column an array with an
/// element per decision, since 2026-11-28: PostgreSQL's work here is per row — a heap tuple, an index
/// entry, their WAL, ~5–8 µs a row on this machine — and a commit of 4 × 64 decisions spent more on
/// its rows than on everything else (docs/BENCHMARKS.md). So is a run of single decisions, consecutive
/// events of one stream in one commit (PersistAll's 100 a write), and so, since the morning of 2026-11-28,
/// are the lone single decisions of a run in a commit, two or more, each of another stream (a group:
/// Persist from 100 actors, one event a write). A single decision alone in its run in a commit keeps
/// its row here: as a row of one-element arrays it cost more (PersistAll of single-decision events, one
/// row an event, side by side: 33 k → 21 k events/s). Rows an earlier build wrote for batch events stay here and read back as they were;
/// a history reads both tables (<see cref="HistorySql"/>).</para></summary>
public static class DecisionRows
{
    public const string TableName = "mt_decision_rows";

    /// <summary>The table's one index, on (run, global_seq, idx).</summary>
    public const string RunIndexName = $"ix_{TableName}_run_seq";

    /// <summary>The table, for Marten's schema management (created and migrated with the store).</summary>
    public static Table Table(string schema)
    {
        var t = new Table(new PostgresqlObjectName(schema, TableName, SchemaUtils.IdentifierUsage.General));
        t.AddColumn<string>("stream").NotNull();
        t.AddColumn<long>("version").NotNull();
        t.AddColumn<int>("idx").NotNull();
        t.AddColumn<bool>("in_batch").NotNull();
        t.AddColumn<string>("run").NotNull();
        t.AddColumn<string>("vm").NotNull();
        t.AddColumn<int>("vcpu").NotNull();
        t.AddColumn<long>("gpa").NotNull();
        t.AddColumn<long>("gpa_page").NotNull();
        t.AddColumn<string>("op").NotNull();
        t.AddColumn<string>("result").NotNull();
        t.AddColumn<string>("path").NotNull();
        t.AddColumn<string>("errno").AllowNulls();
        t.AddColumn<string>("mem_type").AllowNulls();
        t.AddColumn<long>("global_seq").NotNull();
        t.Indexes.Add(new IndexDefinition(RunIndexName) { Columns = ["run", "global_seq", "idx"] });
        return t;
    }

    /// <summary>The table of batch events' decisions: a row per event.</summary>
    public const string EventsTableName = "mt_decision_events";

    /// <summary>Its one index, on (run, global_seq).</summary>
    public const string EventsRunIndexName = $"ix_{EventsTableName}_run_seq";

    /// <summary>The batch events' table: stream, version, run and global_seq as in <see cref="Table"/>,
    /// then one array per decision field with an element per decision, in the event's order (element i
    /// is the decision with index i - 1). No key, as there. A row may also hold a run of single
    /// decisions (<c>seqs</c>, below).</summary>
    public static Table EventsTable(string schema)
    {
        var t = new Table(new PostgresqlObjectName(schema, EventsTableName, SchemaUtils.IdentifierUsage.General));
        t.AddColumn<string>("stream").NotNull();
        t.AddColumn<long>("version").NotNull();
        t.AddColumn<string>("run").NotNull();
        t.AddColumn<long>("global_seq").NotNull();
        t.AddColumn("vm", "text[]").NotNull();
        t.AddColumn("vcpu", "integer[]").NotNull();
        t.AddColumn("gpa", "bigint[]").NotNull();
        t.AddColumn("op", "text[]").NotNull();
        t.AddColumn("result", "text[]").NotNull();
        t.AddColumn("path", "text[]").NotNull();
        t.AddColumn("errno", "text[]").NotNull();
        t.AddColumn("mem_type", "text[]").NotNull();
        // Null for a batch event; for a run of single decisions (consecutive events of one stream in
        // one commit, a decision each), each event's seq_id: the row's version and global_seq are the
        // first event's, element i the event version + i - 1.
        t.AddColumn("seqs", "bigint[]").AllowNulls();
        // Null but for a group of single decisions (a commit's lone ones of a run, each of its own
        // stream, since 2026-11-28): element i is the event (streams[i], versions[i]), whose seq_id is
        // seqs[i]; the row's stream, version and global_seq are its first element's.
        t.AddColumn("streams", "text[]").AllowNulls();
        t.AddColumn("versions", "bigint[]").AllowNulls();
        t.Indexes.Add(new IndexDefinition(EventsRunIndexName) { Columns = ["run", "global_seq"] });
        return t;
    }

    /// <summary>Which of the four inserts a commit's rows need.</summary>
    [Flags]
    internal enum Parts
    {
        /// <summary>Single decisions: a row each in <see cref="TableName"/>.</summary>
        Singles = 1,
        /// <summary>Batch events: a row each in <see cref="EventsTableName"/>.</summary>
        Batches = 2,
        /// <summary>Runs of single decisions, consecutive events of one stream in the commit: a row each
        /// in <see cref="EventsTableName"/> (PersistAll's 100 events a write).</summary>
        Runs = 4,
        /// <summary>The lone single decisions of a run in the commit, each of another stream, when there
        /// are two or more: one row in <see cref="EventsTableName"/> (Persist from 100 actors).</summary>
        Groups = 8,
    }

    /// <summary>The rows of every decision event of one commit, in one statement (the parts it has).
    /// Its <c>?</c> parameters (<see cref="Batch.Parameters"/>): for the single decisions, eleven arrays
    /// of one element each (stream, version, run, vm, vcpu, gpa, op, result, path, errno, mem_type); then
    /// for the batch events five of one element per event (stream, version, run, and where its
    /// decisions start and end in the next eight, from 1) and eight of one element per decision (vm,
    /// vcpu, gpa, op, result, path, errno, mem_type), an event's arrays being slices of these; then the
    /// same thirteen for the runs of single decisions (a run's first version in place of the event's);
    /// then for the groups of single decisions three of one element per group (run, and where its
    /// decisions start and end, from 1), two of one element per decision (its event's stream and
    /// version) and the eight decision arrays.
    /// <para>Plain inserts: a row holds its event's stream and version, which the append in the same
    /// transaction makes new (mt_events is unique on them, and the append checks the expected version),
    /// so no row can be there already (an upsert cost PostgreSQL ~18 µs a row against ~15).</para>
    /// <para><c>global_seq</c> is the event's <c>seq_id</c>, read by the statement: PostgreSQL assigns
    /// it in the append of the same batch (the journal's statement or Marten's append function), after
    /// the rows were collected. It is looked up
    /// once per event (the materialized <c>evs</c>, <c>evb</c>), by a scalar subquery on mt_events' unique
    /// (stream_id, version) index: a join with mt_events, prepared on a fresh, empty table, got a
    /// sequential-scan plan that stayed cached (1–2 ms a commit).</para></summary>
    internal static string InsertSql(string schema, string eventsSchema, Parts parts) => InsertSqls.GetOrAdd((schema, eventsSchema, parts), k =>
    {
        var seqId = $"(select m.seq_id from {k.Item2}.mt_events m where m.stream_id = s.stream and m.version = s.version)";
        var seqs = $"(select array_agg(m.seq_id order by m.version) from {k.Item2}.mt_events m where {RunOfEvents("m")})";
        var parts = PartsSql(k.Item1, seqId, "", seqs, GroupSeqsFromEvents(k.Item2)).Where(x => k.Item3.HasFlag(x.Part)).ToArray();
        // The last part's insert is the statement; the inserts before it are CTEs in their places.
        var ctes = parts.SelectMany((x, i) => i < parts.Length - 1 ? [x.Source, $"{InsertName(x.Part)} as ({x.Insert})"] : new[] { x.Source });
        return $"with {string.Join(", ", ctes)} {parts[^1].Insert}";
    });

    private static readonly System.Collections.Concurrent.ConcurrentDictionary<(string, string, Parts), string> InsertSqls = new();

    /// <summary>The rows' inserts written into the journal's append statement (<see cref="Journal.JournalAppend.SqlWithRowsFor"/>),
    /// after its CTEs: each event's global sequence number is read from what the append returns
    /// (<c>appended</c>: stream_id, version, seq_id) instead of looked up in mt_events. A left join: an
    /// event the append did not return leaves a null, which the table refuses, so the statement fails.
    /// Its <c>?</c> parameters are <see cref="InsertSql"/>'s, in the same order.</summary>
    internal static string CtesAfterAppend(string schema, Parts parts) =>
        string.Join(", ", PartsSql(schema, "a.seq_id", "left join appended a on a.stream_id = s.stream and a.version = s.version",
                $"(select array_agg(a.seq_id order by a.version) from appended a where {RunOfEvents("a")})", GroupSeqsFromAppended)
            .Where(x => parts.HasFlag(x.Part)).Select(x => $"{x.Source}, {InsertName(x.Part)} as ({x.Insert})"));

    /// <summary>Each part's source CTE and insert, in the order of their parameters. A batch event's
    /// row takes its event's seq_id (<paramref name="seqId"/>); a run's, each of its events' in version
    /// order (<paramref name="seqs"/>), a group's each of its events' in its order
    /// (<paramref name="groupSeqs"/>) — a run or group whose events were not all found leaves a null
    /// global_seq, which the table refuses.</summary>
    private static (Parts Part, string Source, string Insert)[] PartsSql(string schema, string seqId, string join, string seqs, string groupSeqs) =>
    [
        (Parts.Singles, SinglesCte(seqId, join), SinglesInsert(schema)),
        (Parts.Batches, ArraysCte("evb", $"{seqId} as seq_id", join), ArraysInsert(schema, "evb", "evb.stream", "evb.version", "evb.seq_id", [])),
        (Parts.Runs, ArraysCte("evr", $"{seqs} as seqs", ""),
            ArraysInsert(schema, "evr", "evr.stream", "evr.version", AllFound("evr"), ["seqs"])),
        (Parts.Groups, GroupsCte(groupSeqs),
            ArraysInsert(schema, "evg", "evg.streams[1]", "evg.versions[1]", AllFound("evg"), ["seqs", "streams", "versions"])),
    ];

    /// <summary>The first seq_id of a row of single decisions (a run, a group), or null — which the table
    /// refuses — unless every one of its events was found.</summary>
    private static string AllFound(string name) => $"case when cardinality({name}.seqs) = {name}.hi - {name}.lo + 1 then {name}.seqs[1] end";

    /// <summary>A group's seq_ids, in the order of its elements (<c>g.streams</c>, <c>g.versions</c>),
    /// from what the append returns (<c>appended</c>); an element not found leaves none.</summary>
    private const string GroupSeqsFromAppended =
        "(select array_agg(a.seq_id order by u.n) from unnest(g.streams, g.versions) with ordinality as u(stream, version, n) " +
        "join appended a on a.stream_id = u.stream and a.version = u.version)";

    /// <summary>The same from mt_events in <paramref name="eventsSchema"/>, an element at a time by its
    /// unique (stream_id, version) index: a join, planned generically on a fresh schema's empty table,
    /// would read the whole table.</summary>
    private static string GroupSeqsFromEvents(string eventsSchema) =>
        "(select array_agg(x.seq_id order by x.n) from (select u.n, " +
        $"(select m.seq_id from {eventsSchema}.mt_events m where m.stream_id = u.stream and m.version = u.version) as seq_id " +
        "from unnest(g.streams, g.versions) with ordinality as u(stream, version, n)) x where x.seq_id is not null)";

    /// <summary>The groups of single decisions, <c>evg</c>: run, the first and last place of their
    /// decisions (and events) in the arrays (from 1), each element's stream and version, and their
    /// seq_ids (<paramref name="seqs"/>).</summary>
    private static string GroupsCte(string seqs) =>
        $"evg as materialized (select s.run, s.lo, s.hi, g.streams, g.versions, {seqs} as seqs " +
        "from unnest(?::text[], ?::int[], ?::int[]) as s(run, lo, hi) " +
        "cross join lateral (select (?::text[])[s.lo:s.hi] as streams, (?::bigint[])[s.lo:s.hi] as versions) g)";

    private static string InsertName(Parts part) => part switch
    {
        Parts.Singles => "decision_rows",
        Parts.Batches => "decision_events",
        Parts.Runs => "decision_runs",
        _ => "decision_groups",
    };

    /// <summary>The events of a run <c>s</c> (its first version, and lo..hi its decisions, one an event)
    /// among those of <paramref name="alias"/> (stream_id, version).</summary>
    private static string RunOfEvents(string alias) =>
        $"{alias}.stream_id = s.stream and {alias}.version between s.version and s.version + (s.hi - s.lo)";

    /// <summary>The single decisions, <c>evs</c>: one per event, with its seq_id (<paramref name="seqId"/>).</summary>
    private static string SinglesCte(string seqId, string join) =>
        $"evs as materialized (select s.*, {seqId} as seq_id " +
        "from unnest(?::text[], ?::bigint[], ?::text[], ?::text[], ?::int[], ?::bigint[], ?::text[], ?::text[], ?::text[], ?::text[], ?::text[]) " +
        $"as s(stream, version, run, vm, vcpu, gpa, op, result, path, errno, mem_type) {join})";

    private static string SinglesInsert(string schema) =>
        $"insert into {schema}.{TableName} ({Columns}) " +
        "select evs.stream, evs.version, 0, false, evs.run, evs.vm, evs.vcpu, evs.gpa, evs.gpa & ~4095::bigint, evs.op, evs.result, evs.path, evs.errno, evs.mem_type, evs.seq_id from evs";

    /// <summary>The rows of arrays (batch events <c>evb</c>, runs of single decisions <c>evr</c>):
    /// stream, (first) version, run, the first and last place of their decisions in the decision
    /// arrays (from 1), and <paramref name="seq"/>.</summary>
    private static string ArraysCte(string name, string seq, string join) =>
        $"{name} as materialized (select s.stream, s.version, s.run, s.lo, s.hi, {seq} " +
        $"from unnest(?::text[], ?::bigint[], ?::text[], ?::int[], ?::int[]) as s(stream, version, run, lo, hi) {join})";

    /// <summary>The insert of <paramref name="name"/>'s rows: each row's slices of the decision arrays,
    /// and the <paramref name="extras"/> (columns of the CTE of the same names).</summary>
    private static string ArraysInsert(string schema, string name, string stream, string version, string globalSeq, string[] extras) =>
        $"insert into {schema}.{EventsTableName} ({EventsColumns}{string.Concat(extras.Select(x => ", " + x))}) " +
        $"select {stream}, {version}, {name}.run, {globalSeq}, " +
        string.Join(", ", DecisionArrayTypes.Select(t => $"(?::{t}[])[{name}.lo:{name}.hi]")) +
        string.Concat(extras.Select(x => $", {name}.{x}")) + $" from {name}";

    /// <summary>The types of the decision arrays, in <see cref="EventsColumns"/>' order (vm … mem_type).</summary>
    private static readonly string[] DecisionArrayTypes = ["text", "int", "bigint", "text", "text", "text", "text", "text"];

    /// <summary>Run in the journal's transaction before the rows' insert: its plan is made once, for
    /// any parameters (<see cref="Insert"/>). Scoped to the transaction: a read of a run's history
    /// (<see cref="ForRunAsync"/>) needs its parameters' values to use the whole index.</summary>
    public const string GenericPlans = "set local plan_cache_mode = force_generic_plan";

    /// <summary>Collects the rows of one commit's decision events, then queues them as one
    /// <see cref="Insert"/> (<see cref="InsertSql"/>).</summary>
    internal sealed class Batch
    {
        private readonly ScalarRows _single = new();
        private readonly ArrayRows _batches = new(), _runs = new();
        private readonly GroupRows _groups = new();
        // Single decisions as they come, in the commit's order; sorted into rows, runs and groups once all are in.
        private readonly List<(string Stream, long Version, string Run, ActorSim.Domain.Kvm.DecisionRecord Decision)> _singles = [];
        private bool _sealed;

        /// <summary>The decisions collected.</summary>
        public int Rows => _singles.Count + _batches.Decisions.Count;

        public Parts Parts
        {
            get
            {
                Seal();
                return (_single.Decisions.Count > 0 ? Parts.Singles : 0) | (_batches.Decisions.Count > 0 ? Parts.Batches : 0) |
                    (_runs.Decisions.Count > 0 ? Parts.Runs : 0) | (_groups.Decisions.Count > 0 ? Parts.Groups : 0);
            }
        }

        /// <summary>An event's decisions: a batch event's (<paramref name="inBatch"/>; read back as
        /// "stream/version/index") as one row of arrays; a single decision ("stream/version") as a row,
        /// or, with the next events of its stream in the commit, as a row of arrays for the run, or, with
        /// the other lone ones of its run in the commit, as a row of arrays for the group
        /// (<see cref="Seal"/>).</summary>
        public void AddEvent(string stream, long version, bool inBatch, string run, IReadOnlyList<ActorSim.Domain.Kvm.DecisionRecord> decisions)
        {
            if (_sealed) throw new InvalidOperationException("the commit's rows were already sent");
            if (decisions.Count == 0) return;
            if (!inBatch)
            {
                foreach (var d in decisions) _singles.Add((stream, version, run, d));
                return;
            }
            _batches.Start(stream, version, run);
            foreach (var d in decisions) _batches.Decisions.Add(d);
            _batches.End();
        }

        /// <summary>Single decisions of consecutive versions of one stream go as one row (a run); the lone
        /// ones of a run, two or more, as one row too (a group: Persist from 100 actors, one event a
        /// write, put ~50 such decisions in a commit, and a row each was a quarter of its time); a lone
        /// one alone in its run as a row of its own: as a row of one-element arrays it cost more.</summary>
        private void Seal()
        {
            if (_sealed) return;
            _sealed = true;
            Dictionary<string, List<int>>? lone = null; // by run; made only for a commit with lone ones
            for (var i = 0; i < _singles.Count;)
            {
                var j = i + 1;
                while (j < _singles.Count && _singles[j].Stream == _singles[i].Stream && _singles[j].Version == _singles[j - 1].Version + 1) j++;
                var (stream, version, run, _) = _singles[i];
                if (j - i == 1)
                {
                    lone ??= new Dictionary<string, List<int>>(StringComparer.Ordinal);
                    if (!lone.TryGetValue(run, out var ofRun)) lone[run] = ofRun = [];
                    ofRun.Add(i);
                }
                else
                {
                    _runs.Start(stream, version, run);
                    for (var k = i; k < j; k++) _runs.Decisions.Add(_singles[k].Decision);
                    _runs.End();
                }
                i = j;
            }
            if (lone is null) return;
            foreach (var (run, ofRun) in lone)
            {
                if (ofRun.Count == 1)
                {
                    var (stream, version, _, decision) = _singles[ofRun[0]];
                    _single.Add(stream, version, run, decision);
                    continue;
                }
                _groups.Start(run);
                foreach (var i in ofRun) _groups.Add(_singles[i].Stream, _singles[i].Version, _singles[i].Decision);
                _groups.End();
            }
        }

        /// <summary>The insert of these rows on their own (a Marten session's commit).</summary>
        public TypedStatement InsertStatement(string schema, string eventsSchema) => new(InsertSql(schema, eventsSchema, Parts), Parameters());

        /// <summary>The parameters of <see cref="InsertSql"/> (and of <see cref="CtesAfterAppend"/>) for <see cref="Parts"/>.</summary>
        public (object Value, NpgsqlDbType Type)[] Parameters()
        {
            Seal();
            var p = new List<(object, NpgsqlDbType)>(37);
            if (_single.Decisions.Count > 0) _single.AddTo(p);
            if (_batches.Decisions.Count > 0) _batches.AddTo(p);
            if (_runs.Decisions.Count > 0) _runs.AddTo(p);
            if (_groups.Decisions.Count > 0) _groups.AddTo(p);
            return [.. p];
        }

        /// <summary>Rows of a decision each: stream, version, run, then the decision's fields.</summary>
        private sealed class ScalarRows
        {
            private readonly List<string> _stream = [], _run = [];
            private readonly List<long> _version = [];
            public readonly Fields Decisions = new();

            public void Add(string stream, long version, string run, ActorSim.Domain.Kvm.DecisionRecord d)
            {
                _stream.Add(stream);
                _version.Add(version);
                _run.Add(run);
                Decisions.Add(d);
            }

            public void AddTo(List<(object, NpgsqlDbType)> p)
            {
                p.Add((_stream.ToArray(), NpgsqlDbType.Array | NpgsqlDbType.Text));
                p.Add((_version.ToArray(), NpgsqlDbType.Array | NpgsqlDbType.Bigint));
                p.Add((_run.ToArray(), NpgsqlDbType.Array | NpgsqlDbType.Text));
                Decisions.AddTo(p);
            }
        }

        /// <summary>Rows of arrays: per row stream, (first) version, run and the place of its decisions
        /// in <see cref="Decisions"/> (lo..hi, from 1: PostgreSQL's arrays count from 1).</summary>
        private sealed class ArrayRows
        {
            private readonly List<string> _stream = [], _run = [];
            private readonly List<long> _version = [];
            private readonly List<int> _lo = [], _hi = [];
            public readonly Fields Decisions = new();

            /// <summary>A row, whose decisions are those added to <see cref="Decisions"/> until <see cref="End"/>.</summary>
            public void Start(string stream, long version, string run)
            {
                _stream.Add(stream);
                _version.Add(version);
                _run.Add(run);
                _lo.Add(Decisions.Count + 1);
            }

            public void End() => _hi.Add(Decisions.Count);

            public void AddTo(List<(object, NpgsqlDbType)> p)
            {
                p.Add((_stream.ToArray(), NpgsqlDbType.Array | NpgsqlDbType.Text));
                p.Add((_version.ToArray(), NpgsqlDbType.Array | NpgsqlDbType.Bigint));
                p.Add((_run.ToArray(), NpgsqlDbType.Array | NpgsqlDbType.Text));
                p.Add((_lo.ToArray(), NpgsqlDbType.Array | NpgsqlDbType.Integer));
                p.Add((_hi.ToArray(), NpgsqlDbType.Array | NpgsqlDbType.Integer));
                Decisions.AddTo(p);
            }
        }

        /// <summary>Groups of single decisions, each of its own event: per row its run and the place of its
        /// decisions in <see cref="Decisions"/> (lo..hi, from 1), per decision its event's stream and version.</summary>
        private sealed class GroupRows
        {
            private readonly List<string> _run = [], _stream = [];
            private readonly List<long> _version = [];
            private readonly List<int> _lo = [], _hi = [];
            public readonly Fields Decisions = new();

            public void Start(string run)
            {
                _run.Add(run);
                _lo.Add(Decisions.Count + 1);
            }

            public void Add(string stream, long version, ActorSim.Domain.Kvm.DecisionRecord d)
            {
                _stream.Add(stream);
                _version.Add(version);
                Decisions.Add(d);
            }

            public void End() => _hi.Add(Decisions.Count);

            public void AddTo(List<(object, NpgsqlDbType)> p)
            {
                p.Add((_run.ToArray(), NpgsqlDbType.Array | NpgsqlDbType.Text));
                p.Add((_lo.ToArray(), NpgsqlDbType.Array | NpgsqlDbType.Integer));
                p.Add((_hi.ToArray(), NpgsqlDbType.Array | NpgsqlDbType.Integer));
                p.Add((_stream.ToArray(), NpgsqlDbType.Array | NpgsqlDbType.Text));
                p.Add((_version.ToArray(), NpgsqlDbType.Array | NpgsqlDbType.Bigint));
                Decisions.AddTo(p);
            }
        }

        /// <summary>The fields of decisions, a list each, in the tables' column order (vm, vcpu, gpa, op,
        /// result, path, errno, mem_type).</summary>
        private sealed class Fields
        {
            private readonly List<string> _vm = [], _op = [], _result = [], _path = [];
            private readonly List<int> _vcpu = [];
            private readonly List<long> _gpa = [];
            private readonly List<string?> _errno = [], _memType = [];

            public int Count => _vcpu.Count;

            public void Add(ActorSim.Domain.Kvm.DecisionRecord d)
            {
                var o = d.Outcome;
                _vm.Add(d.Inputs.Vm);
                _vcpu.Add(d.Inputs.Vcpu);
                _gpa.Add((long)d.Inputs.Gpa);
                _op.Add(d.Inputs.Op.ToString());
                _result.Add(o.Result.ToString());
                _path.Add(o.Path.ToString());
                _errno.Add(o.Errno == Errno.None ? null : o.Errno.ToString());
                _memType.Add(o.Leaf is { } leaf && ActorSim.Domain.Stage2.MemAttr.TypeOf(leaf.MemAttr, d.Inputs.Policy.Cpu.Fwb) is { } t
                    ? ActorSim.Domain.Stage2.MemAttr.MemTypeOf(t).Name() : null);
            }

            public void AddTo(List<(object, NpgsqlDbType)> p)
            {
                p.Add((_vm.ToArray(), NpgsqlDbType.Array | NpgsqlDbType.Text));
                p.Add((_vcpu.ToArray(), NpgsqlDbType.Array | NpgsqlDbType.Integer));
                p.Add((_gpa.ToArray(), NpgsqlDbType.Array | NpgsqlDbType.Bigint));
                p.Add((_op.ToArray(), NpgsqlDbType.Array | NpgsqlDbType.Text));
                p.Add((_result.ToArray(), NpgsqlDbType.Array | NpgsqlDbType.Text));
                p.Add((_path.ToArray(), NpgsqlDbType.Array | NpgsqlDbType.Text));
                p.Add((_errno.ToArray(), NpgsqlDbType.Array | NpgsqlDbType.Text));
                p.Add((_memType.ToArray(), NpgsqlDbType.Array | NpgsqlDbType.Text));
            }
        }
    }

    /// <summary>One commit's rows as a Marten storage operation, in the append's batch and transaction.
    /// <list type="bullet">
    /// <item>Each parameter carries its PostgreSQL type: Marten's <c>QueueSqlCommand</c> looks each one's
    /// type up from its value (Weasel's <c>PostgresqlProvider.ResolveNpgsqlDbType</c>, a linear search
    /// per array parameter), which was 27 % of the journal writer's time in a PersistAll bench (perf).</item>
    /// <item>The statement (prepared by Npgsql after its second use) is planned once, generically
    /// (<see cref="GenericPlans"/>, for the rest of the transaction). By default PostgreSQL plans a
    /// prepared statement again for each execution's parameters while that looks cheaper than one
    /// plan for all, and for these arrays of a few elements (estimated at ten) it always did: the
    /// planner was 14–18 % of PostgreSQL's time in a durable bench (perf), and the commit-wide statement
    /// was slower than one per event (2 VMs x 8 vCPUs, two alternations: mean commit 1.09 / 1.13 ms →
    /// 1.27 / 1.45 ms; with generic plans 0.90 / 0.97 ms). Its generic plan, made on the empty table of
    /// a fresh schema, looks events up by mt_events' unique index (a test checks it).</item>
    /// </list></summary>
    internal sealed class Insert(TypedStatement statement, bool genericPlans)
        : Marten.Internal.Operations.IStorageOperation, Weasel.Storage.NoDataReturnedCall
    {
        public Type DocumentType => typeof(DecisionRow);

        public OperationRole Role() => OperationRole.Insert;

        public Task PostprocessAsync(System.Data.Common.DbDataReader reader, IList<Exception> exceptions, CancellationToken token) => Task.CompletedTask;

        public void ConfigureCommand(Weasel.Postgresql.ICommandBuilder builder, Weasel.Storage.IStorageSession session)
        {
            if (genericPlans)
            {
                builder.Append(GenericPlans);
                builder.StartNewCommand();
            }
            statement.AppendTo(builder);
        }
    }

    /// <summary>A database written by a build before this table (its decisions were Marten documents,
    /// <c>mt_doc_decisionrow</c>, a jsonb body each) has its rows copied over once, when the table is
    /// still empty; the old table is left as it was. Rows written before the global sequence number
    /// was filled in keep 0, and rows from before batch events (no index) get index 0.</summary>
    public static string CopyFromDocumentsSql(string schema) =>
        "do $$ begin " +
        $"if to_regclass('{schema}.mt_doc_decisionrow') is not null and not exists (select 1 from {schema}.{TableName}) then " +
        $"insert into {schema}.{TableName} ({Columns}) " +
        "select data->>'Stream', (data->>'Version')::bigint, coalesce((data->>'Index')::int, 0), data->>'Id' <> (data->>'Stream') || '/' || (data->>'Version'), " +
        "data->>'Run', data->>'Vm', (data->>'Vcpu')::int, (data->>'Gpa')::bigint, (data->>'GpaPage')::bigint, data->>'Op', data->>'Result', " +
        "data->>'Path', data->>'Errno', data->>'MemType', coalesce((data->>'GlobalSeq')::bigint, 0) " +
        $"from {schema}.mt_doc_decisionrow where data->>'Stream' is not null and data->>'Version' is not null on conflict do nothing; " +
        "end if; end $$";

    private const string Columns = "stream, version, idx, in_batch, run, vm, vcpu, gpa, gpa_page, op, result, path, errno, mem_type, global_seq";

    private const string EventsColumns = "stream, version, run, global_seq, vm, vcpu, gpa, op, result, path, errno, mem_type";

    /// <summary>How many of a run's decisions had each result and memory type, counted by PostgreSQL
    /// (a run's rows are not read for it).</summary>
    public static async Task<List<(string Result, string? MemType, long Count)>> CountsAsync(IQuerySession session, string run, CancellationToken ct = default)
    {
        var conn = await session.OpenConnectionAsync(ct).ConfigureAwait(false);
        await using var cmd = new NpgsqlCommand(
            $"select result, mem_type, count(*) from (select result, mem_type from {session.DocumentStore.Options.DatabaseSchemaName}.{TableName} where run = @run " +
            $"union all select d.result, d.mem_type from {session.DocumentStore.Options.DatabaseSchemaName}.{EventsTableName} e " +
            "cross join lateral unnest(e.result, e.mem_type) as d(result, mem_type) where e.run = @run) c group by 1, 2", conn);
        cmd.Parameters.AddWithValue("run", run);
        var counts = new List<(string, string?, long)>();
        await using var r = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false);
        while (await r.ReadAsync(ct).ConfigureAwait(false)) counts.Add((r.GetString(0), r.IsDBNull(1) ? null : r.GetString(1), r.GetInt64(2)));
        return counts;
    }

    /// <summary><see cref="ForRunAsync"/>'s query: parameters <c>@run</c>, <c>@vm</c>, <c>@page</c>; a row
    /// per decision, from both tables, with <see cref="Table"/>'s columns, each table's rows found by its
    /// run index. Unordered: PostgreSQL cannot merge the two ordered scans (a union's branch that joins
    /// an event to its unnested arrays is planned as a subquery, whose order its parent does not see),
    /// so <see cref="ForRunAsync"/> orders the rows itself rather than have PostgreSQL sort them.</summary>
    internal static string HistorySql(string schema) =>
        $"select {Columns} from {schema}.{TableName} " +
        "where run = @run and (@vm::text is null or vm = @vm) and (@page::bigint is null or gpa_page = @page) " +
        // A batch event's row: its decisions' indexes; a run's: its events' versions and seq_ids; a
        // group's: its events' streams, versions and seq_ids.
        "union all select coalesce(e.streams[d.n], e.stream), " +
        "case when e.versions is not null then e.versions[d.n] when e.seqs is null then e.version else e.version + d.n - 1 end, " +
        "case when e.seqs is null then (d.n - 1)::int else 0 end, " +
        "e.seqs is null, e.run, d.vm, d.vcpu, d.gpa, d.gpa & ~4095::bigint, d.op, d.result, d.path, d.errno, d.mem_type, coalesce(e.seqs[d.n], e.global_seq) " +
        $"from {schema}.{EventsTableName} e cross join lateral unnest(e.vm, e.vcpu, e.gpa, e.op, e.result, e.path, e.errno, e.mem_type) " +
        "with ordinality as d(vm, vcpu, gpa, op, result, path, errno, mem_type, n) " +
        "where e.run = @run and (@vm::text is null or d.vm = @vm) and (@page::bigint is null or d.gpa & ~4095::bigint = @page)";

    /// <summary>A run's decisions in global order (then their place in their event), optionally of one
    /// VM and one GPA page.</summary>
    public static async Task<List<DecisionRow>> ForRunAsync(IQuerySession session, string run, string? vm = null, long? gpaPage = null, CancellationToken ct = default)
    {
        var conn = await session.OpenConnectionAsync(ct).ConfigureAwait(false);
        await using var cmd = new NpgsqlCommand(HistorySql(session.DocumentStore.Options.DatabaseSchemaName), conn);
        cmd.Parameters.AddWithValue("run", run);
        cmd.Parameters.Add(new NpgsqlParameter<string?>("vm", NpgsqlTypes.NpgsqlDbType.Text) { TypedValue = vm });
        cmd.Parameters.Add(new NpgsqlParameter<long?>("page", NpgsqlTypes.NpgsqlDbType.Bigint) { TypedValue = gpaPage });
        var rows = new List<DecisionRow>();
        await using var r = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false);
        while (await r.ReadAsync(ct).ConfigureAwait(false))
        {
            var stream = r.GetString(0);
            var version = r.GetInt64(1);
            var idx = r.GetInt32(2);
            rows.Add(new DecisionRow
            {
                Id = r.GetBoolean(3) ? $"{stream}/{version}/{idx}" : $"{stream}/{version}",
                Stream = stream, Version = version, Index = idx, Run = r.GetString(4), Vm = r.GetString(5), Vcpu = r.GetInt32(6),
                Gpa = r.GetInt64(7), GpaPage = r.GetInt64(8), Op = r.GetString(9), Result = r.GetString(10), Path = r.GetString(11),
                Errno = r.IsDBNull(12) ? null : r.GetString(12), MemType = r.IsDBNull(13) ? null : r.GetString(13), GlobalSeq = r.GetInt64(14),
            });
        }
        // Events in global order (rows from builds that wrote no sequence number share 0: then by stream
        // and version), a batch event's decisions by their index.
        rows.Sort(static (a, b) =>
        {
            var c = a.GlobalSeq.CompareTo(b.GlobalSeq);
            if (c == 0) c = string.CompareOrdinal(a.Stream, b.Stream);
            if (c == 0) c = a.Version.CompareTo(b.Version);
            return c != 0 ? c : a.Index.CompareTo(b.Index);
        });
        return rows;
    }
}
