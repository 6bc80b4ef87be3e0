using System.Collections.Immutable;
using ActorSim.Actors;
using ActorSim.Actors.Scenarios;
using ActorSim.Persistence.ReadSide;
using Akka.Actor;
using Marten;
using static ActorSim.Persistence.Tests.SingleDecisionWrites;

namespace ActorSim.Persistence.Tests;

/// <summary>A scenario through the actors on the Marten journal: every event is in PostgreSQL, and the
/// inline projection gives the decision history per VM and GPA page and the run summary.</summary>
public sealed class ReadSideTests(SchemaFixture schema) : IClassFixture<SchemaFixture>
{
    private static string ScenarioFile(string name)
    {
        var dir = AppContext.BaseDirectory;
        while (!File.Exists(Path.Combine(dir, "ActorSim.sln"))) dir = Path.GetDirectoryName(dir)!;
        return Path.Combine(dir, "scenarios", name);
    }

    [Fact]
    public async Task A_scenario_on_the_real_journal_projects_its_decisions_and_summary()
    {
        var scenario = ScenarioParser.ParseFile(ScenarioFile("o06-memory-disable-and-enable.yaml"));
        using var sys = ActorSystem.Create("readside", PostgresSchema.AkkaConfig(schema.Name).WithFallback(SimHost.BaseConfig(false)));
        var results = await ScenarioRunner.RunAsync(sys, scenario, runId: "rs1");
        Assert.True(results.All(r => r.Passed), string.Join("\n", results.Where(r => !r.Passed)));
        await sys.Terminate();

        var store = MartenStores.Get(PostgresSchema.ConnectionString, schema.Name);
        await using var session = store.QuerySession();
        var page = await DecisionRows.ForRunAsync(session, "rs1", "vm1", 0x80_0000_1000L);
        // write (mapped NC), read after disable (EFAULT), read after enable (mapped NC)
        Assert.Equal(["Mapped:Normal-NC", "Error:", "Mapped:Normal-NC"], page.Select(d => $"{d.Result}:{d.MemType}"));
        Assert.Equal("EFAULT", page[1].Errno);
        Assert.Equal("PfnError", page[1].Path);
        // Each row carries its event's global sequence number (Quick append assigns it in the database).
        foreach (var row in page)
        {
            var ev = await session.Events.QueryAllRawEvents().SingleAsync(e => e.StreamKey == row.Stream && e.Version == row.Version);
            Assert.Equal(ev.Sequence, row.GlobalSeq);
        }
        Assert.True(page[0].GlobalSeq > 0 && page[0].GlobalSeq < page[1].GlobalSeq && page[1].GlobalSeq < page[2].GlobalSeq, string.Join(",", page.Select(r => r.GlobalSeq)));

        var summary = await RunSummaries.ForRunAsync(session, "rs1");
        Assert.Equal(4, summary.Decisions);
        Assert.Equal(1, summary.Errors);
        Assert.Equal(3, summary.ByMemType["Normal-NC"]);
        Assert.Equal("hold", summary.InvariantStatus);
        Assert.True(summary.Events > 20, $"{summary.Events} events");
        Assert.Equal(0, summary.InvariantViolations);
    }
}

public sealed class ViolationProjectionTests(SchemaFixture schema) : Akka.TestKit.Xunit2.TestKit(PostgresSchema.AkkaConfig(schema.Name)), IClassFixture<SchemaFixture>
{
    [Fact]
    public async Task A_persisted_violation_shows_in_the_run_summary()
    {
        var journal = Akka.Persistence.Persistence.Instance.Apply(Sys).JournalFor(null);
        var e = new Domain.Invariants.InvariantViolationDetected(17, "rs2/kvm-vm1", "I5", "installed after an invalidation");
        journal.Tell(new Akka.Persistence.WriteMessages([new Akka.Persistence.AtomicWrite(new Akka.Persistence.Persistent(e, 1, "rs2/invariants", "", false, ActorRefs.NoSender, "w"))], TestActor, 1));
        ExpectMsg<Akka.Persistence.WriteMessagesSuccessful>(TimeSpan.FromSeconds(20));
        await using var session = MartenStores.Get(PostgresSchema.ConnectionString, schema.Name).QuerySession();
        var summary = await RunSummaries.ForRunAsync(session, "rs2");
        Assert.Equal((1L, "violated"), (summary.InvariantViolations, summary.InvariantStatus));
        var row = await session.Query<ViolationRow>().SingleAsync(v => v.Run == "rs2");
        Assert.Equal(("I5", 17L, "rs2/kvm-vm1"), (row.Invariant, row.OffendingSeq, row.OffendingStream));
    }
}

public sealed class BatchProjectionTests(SchemaFixture schema) : Akka.TestKit.Xunit2.TestKit(PostgresSchema.AkkaConfig(schema.Name)), IClassFixture<SchemaFixture>
{
    [Fact]
    public async Task A_batch_event_projects_one_row_per_decision_in_order()
    {
        var batch = EventSerializationTests.SampleEvents().OfType<Domain.Kvm.Stage2FaultsResolved>().Single();
        var single = EventSerializationTests.SampleEvents().OfType<Domain.Kvm.Stage2FaultResolved>().First();
        Assert.True(batch.Decisions.Length >= 2);
        var journal = Akka.Persistence.Persistence.Instance.Apply(Sys).JournalFor(null);
        journal.Tell(new Akka.Persistence.WriteMessages([new Akka.Persistence.AtomicWrite(new Akka.Persistence.Persistent(batch, 1, "rs3/kvm-vm1", "", false, ActorRefs.NoSender, "w"))], TestActor, 1));
        ExpectMsg<Akka.Persistence.WriteMessagesSuccessful>(TimeSpan.FromSeconds(20));
        ExpectMsg<Akka.Persistence.WriteMessageSuccess>();
        journal.Tell(new Akka.Persistence.WriteMessages([new Akka.Persistence.AtomicWrite(new Akka.Persistence.Persistent(single, 2, "rs3/kvm-vm1", "", false, ActorRefs.NoSender, "w"))], TestActor, 1));
        ExpectMsg<Akka.Persistence.WriteMessagesSuccessful>(TimeSpan.FromSeconds(20));
        await using var session = MartenStores.Get(PostgresSchema.ConnectionString, schema.Name).QuerySession();
        var rows = await DecisionRows.ForRunAsync(session, "rs3");
        static string Row(Domain.Kvm.DecisionRecord d) =>
            $"{d.Inputs.Vm} {d.Inputs.Vcpu} {d.Inputs.Gpa:x} {d.Inputs.Gpa & ~0xFFFUL:x} {d.Inputs.Op} {d.Outcome.Result} {d.Outcome.Path} " +
            (d.Outcome.Errno == Domain.Kernel.Errno.None ? "-" : d.Outcome.Errno.ToString());
        Assert.Equal(
            batch.Decisions.Select((d, i) => $"rs3/kvm-vm1/1/{i} {Row(d)}").Append($"rs3/kvm-vm1/2 {Row(single.Decision)}"),
            rows.Select(r => $"{r.Id} {r.Vm} {r.Vcpu} {r.Gpa:x} {r.GpaPage:x} {r.Op} {r.Result} {r.Path} {r.Errno ?? "-"}"));
        var seqs = await session.Events.QueryAllRawEvents().Where(e => e.StreamKey == "rs3/kvm-vm1").OrderBy(e => e.Version).Select(e => e.Sequence).ToListAsync();
        Assert.True(seqs[0] > 0 && seqs[1] > seqs[0]);
        Assert.Equal(batch.Decisions.Select(_ => seqs[0]).Append(seqs[1]), rows.Select(r => r.GlobalSeq));
        Assert.Equal(batch.Decisions.Length + 1, (await RunSummaries.ForRunAsync(session, "rs3")).Decisions);
        // The batch event is one row of arrays, the single decision a row of its own.
        await using var conn = new Npgsql.NpgsqlConnection(PostgresSchema.ConnectionString);
        await conn.OpenAsync();
        await using var count = new Npgsql.NpgsqlCommand(
            $"select (select count(*) from {schema.Name}.{DecisionRows.EventsTableName} where run = 'rs3'), " +
            $"(select count(*) from {schema.Name}.{DecisionRows.TableName} where run = 'rs3'), " +
            $"(select cardinality(vm) from {schema.Name}.{DecisionRows.EventsTableName} where run = 'rs3')", conn);
        await using var r = await count.ExecuteReaderAsync();
        await r.ReadAsync();
        Assert.Equal((1L, 1L, batch.Decisions.Length), (r.GetInt64(0), r.GetInt64(1), r.GetInt32(2)));
    }
}

public sealed class CommitProjectionTests(SchemaFixture schema) : Akka.TestKit.Xunit2.TestKit(PostgresSchema.AkkaConfig(schema.Name)), IClassFixture<SchemaFixture>
{
    [Fact]
    public async Task The_rows_of_several_events_of_several_streams_in_one_commit_each_name_their_own_event()
    {
        var batch = EventSerializationTests.SampleEvents().OfType<Domain.Kvm.Stage2FaultsResolved>().Single();
        var single = EventSerializationTests.SampleEvents().OfType<Domain.Kvm.Stage2FaultResolved>().First();
        var journal = Akka.Persistence.Persistence.Instance.Apply(Sys).JournalFor(null);
        // One call: one commit, two streams, three events (a batch, a violation, a single decision).
        journal.Tell(new Akka.Persistence.WriteMessages(
        [
            new Akka.Persistence.AtomicWrite(new Akka.Persistence.Persistent(single, 1, "rs4/kvm-vm2", "", false, ActorRefs.NoSender, "w")),
            new Akka.Persistence.AtomicWrite(ImmutableList.Create<Akka.Persistence.IPersistentRepresentation>(
                new Akka.Persistence.Persistent(batch, 1, "rs4/kvm-vm1", "", false, ActorRefs.NoSender, "w"),
                new Akka.Persistence.Persistent(new Domain.Invariants.InvariantViolationDetected(3, "rs4/kvm-vm1", "I5", "x"), 2, "rs4/kvm-vm1", "", false, ActorRefs.NoSender, "w"),
                new Akka.Persistence.Persistent(single, 3, "rs4/kvm-vm1", "", false, ActorRefs.NoSender, "w"))),
        ], TestActor, 1));
        ExpectMsg<Akka.Persistence.WriteMessagesSuccessful>(TimeSpan.FromSeconds(20));
        await using var session = MartenStores.Get(PostgresSchema.ConnectionString, schema.Name).QuerySession();
        var seqs = (await session.Events.QueryAllRawEvents().Where(e => e.StreamKey!.StartsWith("rs4/")).ToListAsync())
            .ToDictionary(e => $"{e.StreamKey}/{e.Version}", e => e.Sequence);
        var rows = await DecisionRows.ForRunAsync(session, "rs4");
        var expected = new[] { "rs4/kvm-vm2/1" }.Concat(batch.Decisions.Select((_, i) => $"rs4/kvm-vm1/1/{i}")).Append("rs4/kvm-vm1/3")
            .OrderBy(id => seqs[string.Join('/', id.Split('/').Take(3))]).ToList();
        Assert.Equal(expected, rows.Select(r => r.Id));
        Assert.All(rows, r => Assert.Equal(seqs[$"{r.Stream}/{r.Version}"], r.GlobalSeq));
        Assert.Equal((single.Decision.Inputs.Vm, (long)single.Decision.Inputs.Gpa), (rows.Single(r => r.Id == "rs4/kvm-vm1/3").Vm, rows.Single(r => r.Id == "rs4/kvm-vm1/3").Gpa));
        Assert.Equal(1, (await RunSummaries.ForRunAsync(session, "rs4")).InvariantViolations);
    }
}

/// <summary>A database from a build that kept decisions as Marten documents (<c>mt_doc_decisionrow</c>)
/// keeps its decision history: the first store on it copies the rows into the table.</summary>
public sealed class DecisionRowsUpgradeTests(SchemaFixture schema) : IClassFixture<SchemaFixture>
{
    [Fact]
    public async Task Rows_kept_as_documents_by_an_earlier_build_are_copied_once()
    {
        await using (var conn = new Npgsql.NpgsqlConnection(PostgresSchema.ConnectionString))
        {
            await conn.OpenAsync();
            // The document table as Marten made it, with two rows as the earlier projection wrote them:
            // a decision of a batch event, and a single decision from before GlobalSeq and Index were written.
            await using var cmd = new Npgsql.NpgsqlCommand(
                $"create schema {schema.Name}; " +
                $"create table {schema.Name}.mt_doc_decisionrow (id varchar primary key, data jsonb not null, mt_dotnet_type varchar, mt_last_modified timestamptz default now()); " +
                $"insert into {schema.Name}.mt_doc_decisionrow (id, data) values " +
                """('up/kvm-vm1/3/1', '{"Id":"up/kvm-vm1/3/1","Run":"up","Vm":"vm1","Vcpu":2,"GpaPage":1073745920,"Gpa":1073745928,"Op":"Write","Result":"Mapped","Path":"MapLeaf","Errno":null,"MemType":"Normal-NC","GlobalSeq":17,"Stream":"up/kvm-vm1","Version":3,"Index":1}'), """ +
                """('up/kvm-vm1/2', '{"Id":"up/kvm-vm1/2","Run":"up","Vm":"vm1","Vcpu":0,"GpaPage":4096,"Gpa":4096,"Op":"Read","Result":"Error","Path":"PfnError","Errno":"EFAULT","MemType":null,"Stream":"up/kvm-vm1","Version":2}')""",
                conn);
            await cmd.ExecuteNonQueryAsync();
        }
        using (MartenStores.Create(PostgresSchema.ConnectionString, schema.Name)) { }
        using var store = MartenStores.Create(PostgresSchema.ConnectionString, schema.Name); // a second store copies nothing twice
        await using var session = store.QuerySession();
        var rows = await DecisionRows.ForRunAsync(session, "up");
        Assert.Equal(
            ["up/kvm-vm1/2 vm1 0 1000 1000 Read Error PfnError EFAULT - 0", "up/kvm-vm1/3/1 vm1 2 40001008 40001000 Write Mapped MapLeaf - Normal-NC 17"],
            rows.Select(r => $"{r.Id} {r.Vm} {r.Vcpu} {r.Gpa:x} {r.GpaPage:x} {r.Op} {r.Result} {r.Path} {r.Errno ?? "-"} {r.MemType ?? "-"} {r.GlobalSeq}"));
    }
}

/// <summary>The decision rows of a commit go in one prepared statement, planned once, generically
/// (<see cref="DecisionRows.GenericPlans"/>), on what is often a fresh, empty table: that plan must
/// still find each event's global sequence number by mt_events' index, not by reading the table.</summary>
public sealed class DecisionRowsPlanTests(SchemaFixture schema) : IClassFixture<SchemaFixture>
{
    /// <summary>The table had a key on (stream, version, idx) until 2026-11-27 evening: a store on a
    /// database an earlier build made drops it (it cost about half of each row's insert).</summary>
    [Fact]
    public async Task The_key_an_earlier_build_gave_the_table_is_dropped()
    {
        await PostgresSchema.WithStoreSchemaAsync("oldkey", async old =>
        {
            await using var conn = new Npgsql.NpgsqlConnection(PostgresSchema.ConnectionString);
            await conn.OpenAsync();
            async Task<long> Keys()
            {
                await using var q = new Npgsql.NpgsqlCommand(
                    $"select count(*) from pg_constraint where conrelid = '{old}.{DecisionRows.TableName}'::regclass and contype = 'p'", conn);
                return (long)(await q.ExecuteScalarAsync())!;
            }
            Assert.Equal(0, await Keys());
            await using (var key = new Npgsql.NpgsqlCommand($"alter table {old}.{DecisionRows.TableName} add primary key (stream, version, idx)", conn))
                await key.ExecuteNonQueryAsync();
            Assert.Equal(1, await Keys());
            using (MartenStores.Create(PostgresSchema.ConnectionString, old)) { }
            Assert.Equal(0, await Keys());
        });
    }

    /// <summary>Until the night of 2026-11-27 the table's index was on (run, vm, gpa_page): a store on a database an
    /// earlier build made replaces it with the one on (run, global_seq, idx).</summary>
    [Fact]
    public async Task The_index_an_earlier_build_gave_the_table_is_replaced()
    {
        await PostgresSchema.WithStoreSchemaAsync("oldindex", async old =>
        {
            await using var conn = new Npgsql.NpgsqlConnection(PostgresSchema.ConnectionString);
            await conn.OpenAsync();
            async Task<List<string>> Indexes()
            {
                await using var q = new Npgsql.NpgsqlCommand(
                    $"select indexdef from pg_indexes where schemaname = '{old}' and tablename = '{DecisionRows.TableName}' order by indexname", conn);
                return await PostgresSchema.LinesAsync(q);
            }
            Assert.Equal([$"CREATE INDEX {DecisionRows.RunIndexName} ON {old}.{DecisionRows.TableName} USING btree (run, global_seq, idx)"], await Indexes());
            await using (var earlier = new Npgsql.NpgsqlCommand(
                $"drop index {old}.{DecisionRows.RunIndexName}; create index ix_{DecisionRows.TableName}_run_vm_page on {old}.{DecisionRows.TableName} (run, vm, gpa_page)", conn))
                await earlier.ExecuteNonQueryAsync();
            using (MartenStores.Create(PostgresSchema.ConnectionString, old)) { }
            Assert.Equal([$"CREATE INDEX {DecisionRows.RunIndexName} ON {old}.{DecisionRows.TableName} USING btree (run, global_seq, idx)"], await Indexes());
        });
    }

    /// <summary>A run's history is found by the run's index in each table, not by reading the tables.</summary>
    [Fact]
    public async Task A_runs_history_is_read_by_the_run_index_of_each_table()
    {
        var store = MartenStores.Get(PostgresSchema.ConnectionString, schema.Name);
        await using var conn = new Npgsql.NpgsqlConnection(PostgresSchema.ConnectionString);
        await conn.OpenAsync();
        await using var tx = await conn.BeginTransactionAsync();
        // This fixture's tables are near empty, where a scan of the whole table is cheapest; a run's history
        // is read from tables of millions of rows, so the planner is kept to the index paths.
        await using (var noSeq = new Npgsql.NpgsqlCommand("set local enable_seqscan = off; set local enable_bitmapscan = off", conn)) await noSeq.ExecuteNonQueryAsync();
        await using var explain = new Npgsql.NpgsqlCommand("explain " + DecisionRows.HistorySql(schema.Name), conn);
        explain.Parameters.AddWithValue("run", "r1");
        explain.Parameters.Add(new Npgsql.NpgsqlParameter<string?>("vm", NpgsqlTypes.NpgsqlDbType.Text) { TypedValue = null });
        explain.Parameters.Add(new Npgsql.NpgsqlParameter<long?>("page", NpgsqlTypes.NpgsqlDbType.Bigint) { TypedValue = null });
        var plan = await PostgresSchema.LinesAsync(explain);
        Assert.Contains(plan, l => l.Contains($"Index Scan using {DecisionRows.RunIndexName}", StringComparison.Ordinal));
        Assert.Contains(plan, l => l.Contains($"Index Scan using {DecisionRows.EventsRunIndexName}", StringComparison.Ordinal));
        Assert.DoesNotContain(plan, l => l.Contains("Seq Scan", StringComparison.Ordinal));
        GC.KeepAlive(store);
    }

    [Fact]
    public async Task The_rows_insert_planned_generically_on_a_fresh_schema_looks_events_up_by_index()
    {
        var store = MartenStores.Get(PostgresSchema.ConnectionString, schema.Name);
        var n = 0;
        var sql = System.Text.RegularExpressions.Regex.Replace(
            DecisionRows.InsertSql(schema.Name, schema.Name, DecisionRows.Parts.Singles | DecisionRows.Parts.Batches | DecisionRows.Parts.Groups), @"\?", _ => "$" + ++n);
        await using var conn = new Npgsql.NpgsqlConnection(PostgresSchema.ConnectionString);
        await conn.OpenAsync();
        await using var tx = await conn.BeginTransactionAsync();
        await using (var generic = new Npgsql.NpgsqlCommand(DecisionRows.GenericPlans, conn)) await generic.ExecuteNonQueryAsync();
        await using (var prepare = new Npgsql.NpgsqlCommand("prepare rows_insert as " + sql, conn)) await prepare.ExecuteNonQueryAsync();
        await using var explain = new Npgsql.NpgsqlCommand(
            "explain execute rows_insert('{s}', '{1}', '{r}', '{vm1}', '{0}', '{4096}', '{Read}', '{Mapped}', '{MapLeaf}', '{null}', '{null}', " +
            "'{t}', '{1}', '{r}', '{1}', '{2}', '{vm1,vm1}', '{0,1}', '{4096,8192}', '{Read,Read}', '{Mapped,Mapped}', '{MapLeaf,MapLeaf}', '{null,null}', '{null,null}', " +
            "'{r}', '{1}', '{2}', '{g1,g2}', '{1,1}', '{vm1,vm1}', '{0,1}', '{4096,8192}', '{Read,Read}', '{Mapped,Mapped}', '{MapLeaf,MapLeaf}', '{null,null}', '{null,null}')", conn);
        var plan = await PostgresSchema.LinesAsync(explain);
        Assert.Equal(37, n);
        Assert.Contains(plan, l => l.Contains($"Insert on {DecisionRows.TableName}", StringComparison.Ordinal));
        Assert.Contains(plan, l => l.Contains($"Insert on {DecisionRows.EventsTableName}", StringComparison.Ordinal));
        Assert.Contains(plan, l => l.Contains($"Index Scan using pk_mt_events_stream_and_version on mt_events", StringComparison.Ordinal));
        Assert.DoesNotContain(plan, l => l.Contains("Seq Scan", StringComparison.Ordinal));
        GC.KeepAlive(store);
    }
}

/// <summary>Journal writes of single decisions for the run and group tests below: the sample decision
/// at a GPA, and an event as a persistent of a stream.</summary>
internal static class SingleDecisionWrites
{
    private static readonly Domain.Kvm.Stage2FaultResolved Single = EventSerializationTests.SampleEvents().OfType<Domain.Kvm.Stage2FaultResolved>().First();

    public static Domain.Kvm.Stage2FaultResolved At(ulong gpa) => Single with { Decision = Single.Decision with { Inputs = Single.Decision.Inputs with { Gpa = gpa } } };

    public static Akka.Persistence.Persistent P(object e, long seq, string pid) => new(e, seq, pid, "", false, ActorRefs.NoSender, "w");
}

/// <summary>Single decisions of consecutive versions of one stream in one commit (PersistAll's batches)
/// go as one row of arrays; a lone one, or one after a gap, as rows of their own kind; every decision
/// reads back as its own event's, with its version and global sequence number.</summary>
public sealed class RunProjectionTests(SchemaFixture schema) : Akka.TestKit.Xunit2.TestKit(PostgresSchema.AkkaConfig(schema.Name)), IClassFixture<SchemaFixture>
{
    /// <summary>Through the journal's own statement (the gap in stream a a batch event).</summary>
    [Fact]
    public Task Consecutive_single_decisions_of_a_stream_are_one_row_and_read_back_one_by_one() => Check("rs5", violation: false);

    /// <summary>Through a Marten session (a commit with a violation row to store: the gap in stream a).</summary>
    [Fact]
    public Task The_same_in_a_commit_that_stores_documents() => Check("rs6", violation: true);

    private async Task Check(string run, bool violation)
    {
        var batch = EventSerializationTests.SampleEvents().OfType<Domain.Kvm.Stage2FaultsResolved>().Single();
        string a = $"{run}/kvm-a", b = $"{run}/kvm-b";
        var journal = Akka.Persistence.Persistence.Instance.Apply(Sys).JournalFor(null);
        // One commit: stream a has single decisions at versions 1-3, the gap at 4, decisions at 5-6;
        // stream b one decision.
        object gap = violation ? new Domain.Invariants.InvariantViolationDetected(3, a, "I5", "x") : batch;
        journal.Tell(new Akka.Persistence.WriteMessages(
        [
            new Akka.Persistence.AtomicWrite(ImmutableList.Create<Akka.Persistence.IPersistentRepresentation>(
                P(At(0x1000), 1, a), P(At(0x2000), 2, a), P(At(0x3000), 3, a), P(gap, 4, a), P(At(0x5000), 5, a), P(At(0x6000), 6, a))),
            new Akka.Persistence.AtomicWrite(P(At(0xb000), 1, b)),
        ], TestActor, 1));
        ExpectMsg<Akka.Persistence.WriteMessagesSuccessful>(TimeSpan.FromSeconds(20));
        await using var session = MartenStores.Get(PostgresSchema.ConnectionString, schema.Name).QuerySession();
        var seqs = (await session.Events.QueryAllRawEvents().Where(e => e.StreamKey!.StartsWith(run + "/")).ToListAsync())
            .ToDictionary(e => $"{e.StreamKey}/{e.Version}", e => e.Sequence);
        var rows = await DecisionRows.ForRunAsync(session, run);
        var singles = new[] { ($"{a}/1", 0x1000UL), ($"{a}/2", 0x2000UL), ($"{a}/3", 0x3000UL), ($"{a}/5", 0x5000UL), ($"{a}/6", 0x6000UL), ($"{b}/1", 0xb000UL) }
            .Select(x => (Id: x.Item1, Event: x.Item1, Gpa: x.Item2));
        var batchRows = violation ? [] : batch.Decisions.Select((d, i) => (Id: $"{a}/4/{i}", Event: $"{a}/4", Gpa: d.Inputs.Gpa));
        var expected = singles.Concat(batchRows).OrderBy(x => seqs[x.Event]).ThenBy(x => x.Id, StringComparer.Ordinal)
            .Select(x => $"{x.Id} {x.Gpa:x} {seqs[x.Event]}");
        Assert.Equal(expected, rows.Select(r => $"{r.Id} {r.Gpa:x} {r.GlobalSeq}"));
        Assert.Equal(6 + (violation ? 0 : batch.Decisions.Length), (await RunSummaries.ForRunAsync(session, run)).Decisions);
        // Two runs (a 1-3, a 5-6) as rows of arrays, b's lone decision a row of its own.
        await using var conn = new Npgsql.NpgsqlConnection(PostgresSchema.ConnectionString);
        await conn.OpenAsync();
        await using var count = new Npgsql.NpgsqlCommand(
            $"select (select string_agg(stream || ':' || version || ':' || cardinality(seqs), ' ' order by version) from {schema.Name}.{DecisionRows.EventsTableName} where run = @run and seqs is not null), " +
            $"(select string_agg(stream || ':' || version, ' ') from {schema.Name}.{DecisionRows.TableName} where run = @run)", conn);
        count.Parameters.AddWithValue("run", run);
        await using var r = await count.ExecuteReaderAsync();
        await r.ReadAsync();
        Assert.Equal(($"{a}:1:3 {a}:5:2", $"{b}:1"), (r.GetString(0), r.GetString(1)));
    }
}

/// <summary>The lone single decisions of a run in one commit, each of its own stream (Persist from many
/// actors, one event a write), go as one row of arrays, a group; a lone one alone in its run keeps a row
/// of its own; every decision reads back as its own event's, with its stream, version and global
/// sequence number.</summary>
public sealed class GroupProjectionTests(SchemaFixture schema) : Akka.TestKit.Xunit2.TestKit(PostgresSchema.AkkaConfig(schema.Name)), IClassFixture<SchemaFixture>
{
    /// <summary>Through the journal's own statement.</summary>
    [Fact]
    public Task Lone_single_decisions_of_a_run_are_one_row_and_read_back_one_by_one() => Check("gp1", violation: false);

    /// <summary>Through a Marten session (a commit with a violation row to store).</summary>
    [Fact]
    public Task The_same_in_a_commit_that_stores_documents() => Check("gp2", violation: true);

    private async Task Check(string run, bool violation)
    {
        var other = $"{run}x";
        var journal = Akka.Persistence.Persistence.Instance.Apply(Sys).JournalFor(null);
        // One commit: streams c, a and b of the run one decision each (b's after an event that is not a
        // decision), stream d of another run one decision; and, for a session's commit, a violation.
        var writes = new List<Akka.Persistence.AtomicWrite>
        {
            new(P(At(0xc000), 1, $"{run}/kvm-c")),
            new(P(At(0xa000), 1, $"{run}/kvm-a")),
            new(ImmutableList.Create<Akka.Persistence.IPersistentRepresentation>(
                P(new Domain.Kvm.MmuInvalidateBegan("vm1", 0x1000, 0x2000), 1, $"{run}/kvm-b"), P(At(0xb000), 2, $"{run}/kvm-b"))),
            new(P(At(0xd000), 1, $"{other}/kvm-d")),
        };
        if (violation) writes.Add(new(P(new Domain.Invariants.InvariantViolationDetected(1, $"{run}/kvm-a", "I5", "x"), 1, $"{run}/checker")));
        journal.Tell(new Akka.Persistence.WriteMessages(writes, TestActor, 1));
        ExpectMsg<Akka.Persistence.WriteMessagesSuccessful>(TimeSpan.FromSeconds(20));
        await using var session = MartenStores.Get(PostgresSchema.ConnectionString, schema.Name).QuerySession();
        var seqs = (await session.Events.QueryAllRawEvents().Where(e => e.StreamKey!.StartsWith(run)).ToListAsync())
            .ToDictionary(e => $"{e.StreamKey}/{e.Version}", e => e.Sequence);
        var expected = new[] { ($"{run}/kvm-c/1", 0xc000UL), ($"{run}/kvm-a/1", 0xa000UL), ($"{run}/kvm-b/2", 0xb000UL) }
            .OrderBy(x => seqs[x.Item1]).Select(x => $"{x.Item1} {x.Item2:x} {seqs[x.Item1]}");
        Assert.Equal(expected, (await DecisionRows.ForRunAsync(session, run)).Select(r => $"{r.Id} {r.Gpa:x} {r.GlobalSeq}"));
        Assert.Equal([$"{other}/kvm-d/1 d000 {seqs[$"{other}/kvm-d/1"]}"], (await DecisionRows.ForRunAsync(session, other)).Select(r => $"{r.Id} {r.Gpa:x} {r.GlobalSeq}"));
        Assert.Equal(3, (await RunSummaries.ForRunAsync(session, run)).Decisions);
        // The run's three as one row (streams, versions and seq_ids in the commit's order), d's a row of its own.
        await using var conn = new Npgsql.NpgsqlConnection(PostgresSchema.ConnectionString);
        await conn.OpenAsync();
        await using var count = new Npgsql.NpgsqlCommand(
            $"select (select string_agg(array_to_string(streams, ',') || ':' || array_to_string(versions, ',') || ':' || (seqs = array[@c, @a, @b]) || ':' || (global_seq = @c), ' ') " +
            $"from {schema.Name}.{DecisionRows.EventsTableName} where run = @run), " +
            $"(select string_agg(stream || ':' || version, ' ') from {schema.Name}.{DecisionRows.TableName} where run in (@run, @other))", conn);
        count.Parameters.AddWithValue("run", run);
        count.Parameters.AddWithValue("other", other);
        count.Parameters.AddWithValue("c", seqs[$"{run}/kvm-c/1"]);
        count.Parameters.AddWithValue("a", seqs[$"{run}/kvm-a/1"]);
        count.Parameters.AddWithValue("b", seqs[$"{run}/kvm-b/2"]);
        await using var r = await count.ExecuteReaderAsync();
        await r.ReadAsync();
        Assert.Equal(($"{run}/kvm-c,{run}/kvm-a,{run}/kvm-b:1,1,2:true:true", $"{other}/kvm-d:1"), (r.GetString(0), r.GetString(1)));
    }
}
