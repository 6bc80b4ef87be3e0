using ActorSim.Domain.Kernel;
using ActorSim.Domain.Kvm;
using ActorSim.Domain.Simulation;
using ActorSim.Persistence.Journal;
using Marten;
using Npgsql;

namespace ActorSim.Persistence.Tests;

/// <summary>The journal appends a commit's streams with one statement of its own on Marten's event
/// tables (<see cref="JournalAppend"/>) instead of Marten's append function: its rows must be the
/// ones Marten writes, and it must refuse what the function refuses, leaving nothing behind — sent
/// as the journal sends it (one batch outside a transaction) and in a Marten session.</summary>
public sealed class JournalAppendTests(SchemaFixture schema) : IClassFixture<SchemaFixture>
{
    private DocumentStore Store => MartenStores.Get(PostgresSchema.ConnectionString, schema.Name);

    /// <summary>Entries of a short run of the kernel model: decisions and the events around them.</summary>
    private static List<JournalEntry> Entries(int count)
    {
        var k = new SyncKernel(KernelPolicy.Of("6.9"));
        k.AddVm(KvmVm.Create("vm1"));
        k.MmapRam(1UL << 30, null, out var ram);
        k.SetMemslot("vm1", 0, MemslotFlags.None, 0x4000_0000, 1UL << 30, ram);
        for (var i = 0; k.Log.Count < count; i++) k.Access("vm1", i % 2, 0x4000_0000 + (ulong)i * 4096, AccessOp.Read);
        return k.Log.Take(count).Select((e, i) => JournalEntry.ForEvent(e.Event, "w1", 1000 + i, i + 1)).ToList();
    }

    /// <summary>As the journal sends a commit: one batch on a connection set up as its writer's
    /// (foreign-key checks skipped where the role may), no transaction; or, for a commit that stores
    /// documents too, queued in a Marten session.</summary>
    private async Task AppendOurs(params (string Stream, long Expected, List<JournalEntry> Entries)[] streams) => await AppendOurs(false, streams);

    private async Task AppendOurs(bool viaSession, params (string Stream, long Expected, List<JournalEntry> Entries)[] streams)
    {
        var append = new JournalAppend(Store, JasperFx.StorageConstants.DefaultTenantId);
        foreach (var (stream, expected, entries) in streams) append.AddStream(stream, expected, entries);
        if (viaSession)
        {
            await using var session = Store.LightweightSession();
            session.QueueOperation(append);
            await session.SaveChangesAsync();
            return;
        }
        await using var conn = new NpgsqlConnection(PostgresSchema.ConnectionString);
        await conn.OpenAsync();
        await MartenJournal.ConfigureWriterSessionAsync(conn);
        await MartenJournal.SendAsync(conn, append, append.Statement);
    }

    private async Task AppendMartens(string stream, long expected, List<JournalEntry> entries)
    {
        await using var session = Store.LightweightSession();
        session.Events.Append(stream, expected + entries.Count, entries.Cast<object>().ToArray());
        await session.SaveChangesAsync();
    }

    /// <summary>A stream's rows, everything but what is unique to a row (seq_id, id, timestamp) and the
    /// stream's name; and whether seq_id follows version.</summary>
    private async Task<(List<string> Events, string Stream, bool SeqFollowsVersion)> Rows(string stream)
    {
        await using var conn = new NpgsqlConnection(PostgresSchema.ConnectionString);
        await conn.OpenAsync();
        var events = new List<string>();
        var seqs = new List<long>();
        await using (var cmd = new NpgsqlCommand(
            $"select version, data::text, encode(bdata, 'base64'), type, tenant_id, mt_dotnet_type, is_archived, timestamp is not null, seq_id from {schema.Name}.mt_events where stream_id = @s order by version", conn))
        {
            cmd.Parameters.AddWithValue("s", stream);
            await using var r = await cmd.ExecuteReaderAsync();
            while (await r.ReadAsync())
            {
                events.Add(string.Join("|", Enumerable.Range(0, 8).Select(i => r.IsDBNull(i) ? "null" : Convert.ToString(r.GetValue(i), System.Globalization.CultureInfo.InvariantCulture))));
                seqs.Add(r.GetInt64(8));
            }
        }
        await using var s = new NpgsqlCommand(
            $"select coalesce(type, 'null') || '|' || version || '|' || tenant_id || '|' || compacted_version || '|' || is_archived || '|' || (created is not null) from {schema.Name}.mt_streams where id = @s", conn);
        s.Parameters.AddWithValue("s", stream);
        var streamRow = (string?)await s.ExecuteScalarAsync() ?? "missing";
        return (events, streamRow, seqs.SequenceEqual(seqs.Order()) && seqs.Distinct().Count() == seqs.Count);
    }

    [Fact]
    public async Task The_journals_rows_are_the_rows_Marten_appends_and_read_back_alike()
    {
        var entries = Entries(12);
        var (ours, theirs) = ($"ours-{Guid.NewGuid():N}", $"theirs-{Guid.NewGuid():N}");
        // A new stream, then an existing one moved on, each way.
        await AppendOurs((ours, 0, entries[..5]));
        await AppendOurs((ours, 5, entries[5..]));
        await AppendMartens(theirs, 0, entries[..5]);
        await AppendMartens(theirs, 5, entries[5..]);

        var a = await Rows(ours);
        var b = await Rows(theirs);
        Assert.Equal(12, a.Events.Count);
        Assert.Equal(b.Events, a.Events);
        Assert.Equal(b.Stream, a.Stream);
        Assert.True(a.SeqFollowsVersion && b.SeqFollowsVersion);

        await using var session = Store.QuerySession();
        var read = await session.Events.FetchStreamAsync(ours);
        Assert.Equal(Enumerable.Range(1, 12).Select(i => (long)i), read.Select(e => e.Version));
        Assert.Equal(entries.Select(e => (e.Type, e.LogSeq, e.Timestamp, Convert.ToBase64String(e.Data!.Utf8))),
            read.Select(e => (JournalEntry)e.Data).Select(e => (e.Type, e.LogSeq, e.Timestamp, Convert.ToBase64String(e.Data!.Utf8))));
        Assert.Equal(12, (await session.Events.FetchStreamStateAsync(ours))!.Version);
    }

    [Fact]
    public async Task Several_streams_in_one_statement_take_sequence_numbers_in_the_commits_order()
    {
        var entries = Entries(9);
        var (x, y) = ($"x-{Guid.NewGuid():N}", $"y-{Guid.NewGuid():N}");
        await AppendOurs((x, 0, entries[..2]));
        await AppendOurs((y, 0, entries[2..5]), (x, 2, entries[5..9]));
        await using var session = Store.QuerySession();
        var all = (await session.Events.QueryAllRawEvents().Where(e => e.StreamKey == x || e.StreamKey == y).ToListAsync())
            .OrderBy(e => e.Sequence).Select(e => $"{(e.StreamKey == x ? "x" : "y")}{e.Version}");
        Assert.Equal(["x1", "x2", "y1", "y2", "y3", "x3", "x4", "x5", "x6"], all);
    }

    public static TheoryData<string, long, bool> WrongVersions => new()
    {
        { "behind: its events are there already", 1, false },
        { "ahead: it would leave a gap", 5, false },
        { "expected new, but it exists", 0, false },
        { "behind, in a Marten session", 1, true },
        { "ahead, in a Marten session", 5, true },
    };

    [Theory]
    [MemberData(nameof(WrongVersions))]
    public async Task A_stream_at_another_version_than_expected_fails_the_commit_and_leaves_nothing(string why, long expected, bool viaSession)
    {
        var entries = Entries(6);
        var (s, other) = ($"s-{Guid.NewGuid():N}", $"o-{Guid.NewGuid():N}");
        await AppendOurs((s, 0, entries[..3]));
        var before = await Rows(s);
        // The good stream comes first: its insert must be rolled back with the rest.
        var e = await Assert.ThrowsAnyAsync<Exception>(() => AppendOurs(viaSession, (other, 0, entries[3..4]), (s, expected, entries[4..6])));
        Assert.True(JournalAppend.IsConflict(e), $"{why}: {e}");
        var after = await Rows(s);
        Assert.True(before.Events.SequenceEqual(after.Events) && before.Stream == after.Stream, why);
        Assert.Equal((0, "missing"), ((await Rows(other)).Events.Count, (await Rows(other)).Stream));
    }

    /// <summary>A commit of one event on a new stream with its decision rows, as the journal sends it.</summary>
    private (JournalAppend Append, TypedStatement Statement) OneEventCommit(string stream, JournalEntry entry)
    {
        var append = new JournalAppend(Store, JasperFx.StorageConstants.DefaultTenantId);
        append.AddStream(stream, 0, [entry]);
        var commit = new ActorSim.Persistence.ReadSide.DecisionProjection.Commit();
        commit.Add(stream, 1, entry);
        return (append, append.StatementWith(commit.RowBatch, Store.Options.DatabaseSchemaName));
    }

    /// <summary><paramref name="statement"/> sent with its parameter <paramref name="index"/> — a one-element
    /// array holding <paramref name="was"/> — made a null: the table refuses the row at
    /// <paramref name="table"/>.<paramref name="column"/>, and nothing of <paramref name="stream"/> is written.</summary>
    private async Task AssertANullRefusedWithTheAppend(NpgsqlConnection conn, JournalAppend append, TypedStatement statement, int index, string was, string table, string column, string stream)
    {
        var parameters = statement.Parameters.ToArray();
        Assert.Equal(new[] { was }, parameters[index].Value);
        parameters[index] = (new string?[] { null }, parameters[index].Type);
        var e = await Assert.ThrowsAsync<PostgresException>(() => MartenJournal.SendAsync(conn, append, new TypedStatement(statement.Sql, parameters)));
        Assert.Equal((PostgresErrorCodes.NotNullViolation, table, column), (e.SqlState, e.TableName, e.ColumnName));
        Assert.Equal((0, "missing"), ((await Rows(stream)).Events.Count, (await Rows(stream)).Stream));
    }

    /// <summary>The append and the decision rows go as one statement, outside a transaction: if the
    /// rows' insert fails, the append must not stay either.</summary>
    [Fact]
    public async Task A_failing_decision_row_takes_the_commits_append_with_it()
    {
        var decision = Entries(40).First(e => e.Type == "stage2_fault_resolved");
        var s = $"rows-{Guid.NewGuid():N}";
        var (append, statement) = OneEventCommit(s, decision);
        Assert.NotEqual(append.Statement.Sql, statement.Sql);
        // The row's VM (the single decisions' fourth array, after the append's eleven parameters) made null: the table refuses the row.
        var vm = ActorSim.Domain.Kvm.DecisionEvents.Of(decision.Decoded ?? decision.Data!.Decode(decision.Type!, decision.SchemaVersion))[0].Inputs.Vm;
        await using var conn = new NpgsqlConnection(PostgresSchema.ConnectionString);
        await conn.OpenAsync();
        await AssertANullRefusedWithTheAppend(conn, append, statement, 11 + 3, vm, "mt_decision_rows", "vm", s);
        // The same commit with its row intact goes in whole, the row with its event's global sequence number.
        await MartenJournal.SendAsync(conn, append, statement);
        Assert.Single((await Rows(s)).Events);
        await using var session = Store.QuerySession();
        var row = Assert.Single(await ActorSim.Persistence.ReadSide.DecisionRows.ForRunAsync(session, ActorSim.Persistence.ReadSide.DecisionProjection.RunOf(s)), x => x.Stream == s);
        var ev = await session.Events.QueryAllRawEvents().SingleAsync(x => x.StreamKey == s);
        Assert.Equal((ev.Sequence, 1L), (row.GlobalSeq, row.Version));
    }

    /// <summary>The same for a batch event's row of arrays (<c>mt_decision_events</c>): if it fails, the
    /// append goes with it; intact, the event's decisions read back one by one, in order, with its
    /// global sequence number.</summary>
    [Fact]
    public async Task A_failing_batch_row_takes_the_commits_append_with_it()
    {
        var decisions = Entries(40).Where(e => e.Type == "stage2_fault_resolved").Take(3)
            .Select(e => ((Stage2FaultResolved)(e.Decoded ?? e.Data!.Decode(e.Type!, e.SchemaVersion))).Decision).ToArray();
        var batch = JournalEntry.ForEvent(new Stage2FaultsResolved(decisions), "w1", 2000, 1);
        var s = $"batch/kvm-{Guid.NewGuid():N}";
        var (append, statement) = OneEventCommit(s, batch);
        // The event's run (the batch events' third array, after the append's eleven parameters) made null: the table refuses the row.
        await using var conn = new NpgsqlConnection(PostgresSchema.ConnectionString);
        await conn.OpenAsync();
        await AssertANullRefusedWithTheAppend(conn, append, statement, 11 + 2, "batch", ActorSim.Persistence.ReadSide.DecisionRows.EventsTableName, "run", s);
        await MartenJournal.SendAsync(conn, append, statement);
        await using var session = Store.QuerySession();
        var rows = (await ActorSim.Persistence.ReadSide.DecisionRows.ForRunAsync(session, "batch")).Where(x => x.Stream == s).ToList();
        var ev = await session.Events.QueryAllRawEvents().SingleAsync(x => x.StreamKey == s);
        Assert.Equal(decisions.Select((d, i) => $"{s}/1/{i} {(long)d.Inputs.Gpa:x} {ev.Sequence}"), rows.Select(r => $"{r.Id} {r.Gpa:x} {r.GlobalSeq}"));
    }

    /// <summary>A group of lone single decisions (<c>mt_decision_events</c> with streams and versions):
    /// if one of its events is not in the append, the row gets no global sequence number, the table
    /// refuses it and the append goes with it; a whole group reads back one by one.</summary>
    [Fact]
    public async Task A_group_row_with_an_event_the_append_did_not_write_takes_the_commit_with_it()
    {
        var decision = Entries(40).First(e => e.Type == "stage2_fault_resolved");
        var run = $"group-{Guid.NewGuid():N}";
        string g1 = $"{run}/kvm-1", g2 = $"{run}/kvm-2", g3 = $"{run}/kvm-3";
        TypedStatement Statement(JournalAppend append, params string[] rowStreams)
        {
            var commit = new ActorSim.Persistence.ReadSide.DecisionProjection.Commit();
            foreach (var s in rowStreams) commit.Add(s, 1, decision);
            Assert.Equal(ActorSim.Persistence.ReadSide.DecisionRows.Parts.Groups, commit.RowBatch!.Parts);
            return append.StatementWith(commit.RowBatch, Store.Options.DatabaseSchemaName);
        }
        var two = new JournalAppend(Store, JasperFx.StorageConstants.DefaultTenantId);
        two.AddStream(g1, 0, [decision]);
        two.AddStream(g2, 0, [decision]);
        await using var conn = new NpgsqlConnection(PostgresSchema.ConnectionString);
        await conn.OpenAsync();
        // Rows for three events, two appended.
        var e = await Assert.ThrowsAsync<PostgresException>(() => MartenJournal.SendAsync(conn, two, Statement(two, g1, g2, g3)));
        Assert.Equal((PostgresErrorCodes.NotNullViolation, ActorSim.Persistence.ReadSide.DecisionRows.EventsTableName, "global_seq"), (e.SqlState, e.TableName, e.ColumnName));
        Assert.Equal((0, 0), ((await Rows(g1)).Events.Count, (await Rows(g2)).Events.Count));
        await MartenJournal.SendAsync(conn, two, Statement(two, g1, g2));
        await using var session = Store.QuerySession();
        var seqs = (await session.Events.QueryAllRawEvents().Where(x => x.StreamKey!.StartsWith(run)).ToListAsync()).ToDictionary(x => x.StreamKey!, x => x.Sequence);
        Assert.Equal([$"{g1}/1 {seqs[g1]}", $"{g2}/1 {seqs[g2]}"],
            (await ActorSim.Persistence.ReadSide.DecisionRows.ForRunAsync(session, run)).Select(r => $"{r.Id} {r.GlobalSeq}"));
    }

    /// <summary>Where the writer's session skips the foreign-key check (<see cref="MartenJournal.SkipForeignKeyChecks"/>),
    /// only the append's own statement keeps an event from a stream that is not there.</summary>
    [Fact]
    public async Task An_event_of_a_stream_that_is_not_there_fails_the_commit_and_leaves_nothing()
    {
        var entries = Entries(4);
        var (missing, other) = ($"missing-{Guid.NewGuid():N}", $"o-{Guid.NewGuid():N}");
        var e = await Assert.ThrowsAnyAsync<Exception>(() => AppendOurs((other, 0, entries[..1]), (missing, 2, entries[1..3])));
        Assert.True(JournalAppend.IsConflict(e), e.ToString());
        Assert.Equal((0, "missing"), ((await Rows(missing)).Events.Count, (await Rows(missing)).Stream));
        Assert.Equal((0, "missing"), ((await Rows(other)).Events.Count, (await Rows(other)).Stream));
    }

    /// <summary>The writer's session skips the check exactly where the role may set the replica role,
    /// and a setting refused leaves the connection working.</summary>
    [Fact]
    public async Task The_writer_session_skips_foreign_key_checks_where_the_role_may()
    {
        await using var conn = new NpgsqlConnection(PostgresSchema.ConnectionString);
        await conn.OpenAsync();
        async Task<string> Query(string sql)
        {
            await using var c = new NpgsqlCommand(sql, conn);
            return Convert.ToString(await c.ExecuteScalarAsync(), System.Globalization.CultureInfo.InvariantCulture)!;
        }
        var may = await Query("select has_parameter_privilege('session_replication_role', 'SET')") == "True";
        Assert.Equal(may, await MartenJournal.ConfigureWriterSessionAsync(conn));
        Assert.Equal(may ? "replica" : "origin", await Query("show session_replication_role"));
        Assert.Equal("force_generic_plan", await Query("show plan_cache_mode"));
        // A setting only a superuser (or a role granted it) may change.
        var mayLog = await Query("select has_parameter_privilege('log_min_duration_statement', 'SET')") == "True";
        var before = await Query("show log_min_duration_statement");
        Assert.Equal(mayLog, await MartenJournal.TrySetAsync(conn, "set log_min_duration_statement = 12345"));
        Assert.Equal(mayLog ? "12345ms" : before, await Query("show log_min_duration_statement"));
        Assert.Equal("1", await Query("select 1"));
    }

    [Fact]
    public async Task An_archived_stream_is_not_appended_to()
    {
        var entries = Entries(4);
        var s = $"arch-{Guid.NewGuid():N}";
        await AppendOurs((s, 0, entries[..2]));
        await using (var conn = new NpgsqlConnection(PostgresSchema.ConnectionString))
        {
            await conn.OpenAsync();
            await using var cmd = new NpgsqlCommand($"update {schema.Name}.mt_streams set is_archived = true where id = @s", conn);
            cmd.Parameters.AddWithValue("s", s);
            await cmd.ExecuteNonQueryAsync();
        }
        var e = await Assert.ThrowsAnyAsync<Exception>(() => AppendOurs((s, 2, entries[2..])));
        Assert.True(JournalAppend.IsConflict(e), e.ToString());
        Assert.Equal(2, (await Rows(s)).Events.Count);
    }

    /// <summary>Planned once, generically (as the journal runs it), on a fresh schema's empty tables:
    /// the streams must still be found by mt_streams' key, not by reading the table.</summary>
    [Fact]
    public async Task The_append_planned_generically_on_a_fresh_schema_finds_streams_by_key()
    {
        await PostgresSchema.WithStoreSchemaAsync("plan", async fresh =>
        {
            var sql = TypedStatement.Number(JournalAppend.SqlFor(fresh));
            await using var conn = new NpgsqlConnection(PostgresSchema.ConnectionString);
            await conn.OpenAsync();
            await using var tx = await conn.BeginTransactionAsync();
            await using (var generic = new NpgsqlCommand(ActorSim.Persistence.ReadSide.DecisionRows.GenericPlans, conn)) await generic.ExecuteNonQueryAsync();
            await using (var prepare = new NpgsqlCommand("prepare journal_append as " + sql, conn)) await prepare.ExecuteNonQueryAsync();
            await using var explain = new NpgsqlCommand(
                "explain execute journal_append('{s}', '{1}', '{2}', '*DEFAULT*', 't', '*DEFAULT*', 'T', '{s}', '{2}', '{00000000-0000-0000-0000-000000000001}', '{\\\\x00}')", conn);
            var plan = await PostgresSchema.LinesAsync(explain);
            Assert.Contains("$11", sql, StringComparison.Ordinal);
            Assert.DoesNotContain("$12", sql, StringComparison.Ordinal);
            Assert.Contains(plan, l => l.Contains("Index Scan using pkey_mt_streams_id on mt_streams", StringComparison.Ordinal));
            Assert.DoesNotContain(plan, l => l.Contains("Seq Scan on mt_streams", StringComparison.Ordinal));

            // With the decision rows in the same statement: the same, and no table read for the rows' seq_ids.
            // Both kinds: single decisions (a row each) and batch events (a row of arrays each).
            var withRows = TypedStatement.Number(JournalAppend.SqlWithRowsFor(fresh, fresh,
                ActorSim.Persistence.ReadSide.DecisionRows.Parts.Singles | ActorSim.Persistence.ReadSide.DecisionRows.Parts.Batches));
            await using (var prepare = new NpgsqlCommand("prepare journal_append_rows as " + withRows, conn)) await prepare.ExecuteNonQueryAsync();
            await using var explainRows = new NpgsqlCommand(
                "explain execute journal_append_rows('{s,t}', '{1,0}', '{2,1}', '*DEFAULT*', 't', '*DEFAULT*', 'T', '{s,t}', '{2,1}', " +
                "'{00000000-0000-0000-0000-000000000001,00000000-0000-0000-0000-000000000002}', '{\\\\x00,\\\\x00}', " +
                "'{s}', '{2}', '{r}', '{vm1}', '{0}', '{4096}', '{Read}', '{Mapped}', '{MapLeaf}', '{null}', '{null}', " +
                "'{t}', '{1}', '{r}', '{1}', '{2}', '{vm1,vm1}', '{0,1}', '{4096,8192}', '{Read,Read}', '{Mapped,Mapped}', '{MapLeaf,MapLeaf}', '{null,null}', '{null,null}')", conn);
            var rowsPlan = await PostgresSchema.LinesAsync(explainRows);
            Assert.Contains("$35", withRows, StringComparison.Ordinal);
            Assert.DoesNotContain("$36", withRows, StringComparison.Ordinal);
            Assert.Contains(rowsPlan, l => l.Contains("Index Scan using pkey_mt_streams_id on mt_streams", StringComparison.Ordinal));
            Assert.Contains(rowsPlan, l => l.Contains($"Insert on {DecisionRowsTable}", StringComparison.Ordinal));
            Assert.Contains(rowsPlan, l => l.Contains($"Insert on {ActorSim.Persistence.ReadSide.DecisionRows.EventsTableName}", StringComparison.Ordinal));
            Assert.DoesNotContain(rowsPlan, l => l.Contains("Seq Scan", StringComparison.Ordinal) || l.Contains("on mt_events m", StringComparison.Ordinal));
        });
    }

    /// <summary>PostgreSQL checks Marten's foreign key from mt_events to mt_streams for every event with
    /// this query, planned per session and again after each ANALYZE of mt_streams. Analyzed while the
    /// table holds a few streams in one page, a session plans it as a sequential scan; the journal's
    /// writer session (<see cref="MartenJournal.WriterSessionSettings"/>) by the key, so the check does
    /// not read every page of a table that each commit's update of its streams grows. (The writer
    /// skips the check altogether where its role may, <see cref="MartenJournal.SkipForeignKeyChecks"/>;
    /// this is the plan where it may not.)</summary>
    [Fact]
    public async Task The_writer_session_checks_the_foreign_key_by_mt_streams_key()
    {
        await PostgresSchema.WithStoreSchemaAsync("fk", async fresh =>
        {
            await using (var conn = new NpgsqlConnection(PostgresSchema.ConnectionString))
            {
                await conn.OpenAsync();
                await using var streams = new NpgsqlCommand(
                    $"insert into {fresh}.mt_streams (id, type, version, timestamp, tenant_id) select 's' || i, null, 1, now(), '*DEFAULT*' from generate_series(1, 20) i; analyze {fresh}.mt_streams", conn);
                await streams.ExecuteNonQueryAsync();
            }
            async Task<List<string>> Plan(string settings)
            {
                await using var conn = new NpgsqlConnection(PostgresSchema.ConnectionString);
                await conn.OpenAsync();
                await using (var set = new NpgsqlCommand(settings, conn)) await set.ExecuteNonQueryAsync();
                // The query ri_triggers.c's RI_FKey_check builds for the key (PostgreSQL 15).
                await using (var prepare = new NpgsqlCommand($"prepare fk_check(varchar) as select 1 from only {fresh}.mt_streams x where id = $1 for key share of x", conn))
                    await prepare.ExecuteNonQueryAsync();
                await using var explain = new NpgsqlCommand("explain execute fk_check('s')", conn);
                return await PostgresSchema.LinesAsync(explain);
            }
            Assert.Contains(await Plan("set plan_cache_mode = force_generic_plan"), l => l.Contains("Seq Scan on mt_streams", StringComparison.Ordinal));
            var writer = await Plan(MartenJournal.WriterSessionSettings);
            Assert.Contains(writer, l => l.Contains("Index Scan using pkey_mt_streams_id on mt_streams", StringComparison.Ordinal));
            Assert.DoesNotContain(writer, l => l.Contains("Seq Scan", StringComparison.Ordinal));
        });
    }

    private const string DecisionRowsTable = ActorSim.Persistence.ReadSide.DecisionRows.TableName;
}
