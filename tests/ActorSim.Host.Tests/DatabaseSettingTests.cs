namespace ActorSim.Host.Tests;

/// <summary>Where the database comes from (architecture.md, "Commands and exit codes"): --db over
/// ACTORSIM_DB over ConnectionStrings:ActorSim in the current directory's appsettings.json over the one
/// beside actorsim.dll, which names the local cluster scripts/pg.sh starts.</summary>
public sealed class DatabaseSettingTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("actorsim-settings-").FullName;
    private string File => Path.Combine(_dir, "appsettings.json");
    private static readonly Dictionary<string, string?> NoEnvironment = new() { ["ACTORSIM_DB"] = null };

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static string TestDatabase =>
        Environment.GetEnvironmentVariable("ACTORSIM_DB") is { Length: > 0 } s ? s : throw new InvalidOperationException("ACTORSIM_DB is not set: run through scripts/test.sh");

    private (int Exit, string Out, string Err) Run(Dictionary<string, string?>? env, params string[] args) => Cli.RunIn(env, _dir, args);

    private static string Shipped => Path.Combine(AppContext.BaseDirectory, "appsettings.json");

    [Fact]
    public void Without_db_or_ACTORSIM_DB_the_database_is_the_one_the_current_directorys_appsettings_names_else_the_shipped_ones()
    {
        // No file here: the shipped one.
        var (exit, output, err) = Run(NoEnvironment, "version");
        Assert.True(exit == 0, output + err);
        Assert.Contains($"database 127.0.0.1:54329/actorsim (ConnectionStrings:ActorSim in {Shipped})", output);

        // A file here without the key (another program's settings): still the shipped one.
        System.IO.File.WriteAllText(File, """{ "Logging": { "LogLevel": { "Default": "Information" } } }""");
        (exit, output, err) = Run(NoEnvironment, "version");
        Assert.True(exit == 0, output + err);
        Assert.Contains($"(ConnectionStrings:ActorSim in {Shipped})", output);

        // A file here with the key, comments and trailing commas (as .NET's appsettings.json allow), any case.
        System.IO.File.WriteAllText(File, """
            // where the simulator's events go
            { "connectionStrings": { "ACTORSIM": "Host=db.example;Port=6543;Database=sim;Password=TopSecret123", }, }
            """);
        (exit, output, err) = Run(NoEnvironment, "version");
        Assert.True(exit == 0, output + err);
        Assert.Contains($"database db.example:6543/sim (ConnectionStrings:ActorSim in {File})", output);
        Assert.DoesNotContain("TopSecret123", output + err);

        // ACTORSIM_DB over the file, --db over both.
        (exit, output, err) = Run(new() { ["ACTORSIM_DB"] = "Host=env.example;Port=1;Database=e" }, "version");
        Assert.True(exit == 0, output + err);
        Assert.Contains("database env.example:1/e (ACTORSIM_DB)", output);
    }

    [Fact]
    public void A_command_uses_the_database_the_settings_name_and_an_unreachable_one_exits_3_naming_where_it_came_from()
    {
        System.IO.File.WriteAllText(File, $$"""{ "ConnectionStrings": { "ActorSim": "{{TestDatabase}}" } }""");
        var (exit, output, err) = Run(NoEnvironment, "runs");
        Assert.True(exit == 0, output + err);
        Assert.StartsWith("run ", output); // the table's header

        System.IO.File.WriteAllText(File, """{ "ConnectionStrings": { "ActorSim": "Host=127.0.0.1;Port=1;Database=x;Password=TopSecret123" } }""");
        foreach (var args in new[] { new[] { "runs" }, ["run", "--rounds", "1"], ["scenario", Path.Combine(Cli.Repo, "scenarios", "o01-vfio-bar-normal-nc.yaml")] })
        {
            (exit, output, err) = Run(NoEnvironment, args);
            Assert.True(exit == 3, $"{string.Join(' ', args)}: {exit} {output} {err}");
            Assert.Contains($"database 127.0.0.1:1/x (ConnectionStrings:ActorSim in {File}) unreachable", err);
            Assert.DoesNotContain("TopSecret123", output + err);
            Assert.DoesNotContain("the local cluster", err); // that hint is for the shipped default only
        }
        // ACTORSIM_DB (the test database) over the file; --db over ACTORSIM_DB.
        (exit, output, err) = Run(null, "runs");
        Assert.True(exit == 0, output + err);
        (exit, output, err) = Run(new() { ["ACTORSIM_DB"] = "Host=127.0.0.1;Port=1;Database=x" }, "runs", "--db", TestDatabase);
        Assert.True(exit == 0, output + err);
        // --in-memory needs no database at all.
        (exit, output, err) = Run(NoEnvironment, "run", "--in-memory", "--rounds", "1");
        Assert.True(exit == 0, output + err);
        Assert.Contains("journal in memory", output);
    }

    [Theory]
    [InlineData("{ \"ConnectionStrings\": {\n  \"ActorSim\": \"Host=x\"\n", ":3: not JSON")]
    [InlineData("{\n \"ConnectionStrings\": {\n  \"ActorSim\": 5 } }", ":3: ConnectionStrings:ActorSim is not a connection string")]
    [InlineData("{\n \"ConnectionStrings\": {\n\n  \"ActorSim\": { \"Host\": \"x\" } } }", ":4: ConnectionStrings:ActorSim is not a connection string")]
    [InlineData("{ \"ConnectionStrings\": { \"ActorSim\": \"\" } }", ":1: ConnectionStrings:ActorSim is not a connection string")]
    [InlineData("\n[ \"Host=x\" ]", ":2: not a JSON object")]
    public void A_settings_file_that_cannot_be_read_exits_2_naming_the_file_and_line(string text, string why)
    {
        System.IO.File.WriteAllText(File, text);
        foreach (var args in new[] { new[] { "runs" }, ["version"] })
        {
            var (exit, output, err) = Run(NoEnvironment, args);
            Assert.True(exit == 2, $"{exit} {output} {err}");
            Assert.Contains($"actorsim database: {File}{why}", err);
        }
    }

    [Fact]
    public void A_connection_string_from_a_settings_file_that_npgsql_cannot_read_is_named_by_its_file_not_its_value()
    {
        System.IO.File.WriteAllText(File, """{ "ConnectionStrings": { "ActorSim": "Host=127.0.0.1;Port=abc;Password=TopSecret123" } }""");
        var (exit, output, err) = Run(NoEnvironment, "runs");
        Assert.True(exit == 2, $"{exit} {output} {err}");
        Assert.Contains($"the connection string (ConnectionStrings:ActorSim in {File}) is not one Npgsql reads (at 'port')", err);
        Assert.DoesNotContain("TopSecret123", output + err);
    }

    /// <summary>The shipped default is what `scripts/pg.sh url` prints: the two cannot drift apart.</summary>
    [Fact]
    public void The_shipped_settings_name_the_cluster_scripts_pg_sh_starts()
    {
        var psi = new System.Diagnostics.ProcessStartInfo("bash", [Path.Combine(Cli.Repo, "scripts", "pg.sh"), "url"]) { RedirectStandardOutput = true };
        psi.Environment.Remove("ACTORSIM_PG_PORT");
        using var p = System.Diagnostics.Process.Start(psi)!;
        var url = p.StandardOutput.ReadToEnd().Trim();
        p.WaitForExit();
        Assert.Equal(0, p.ExitCode);
        using var doc = System.Text.Json.JsonDocument.Parse(System.IO.File.ReadAllText(Shipped), new System.Text.Json.JsonDocumentOptions { CommentHandling = System.Text.Json.JsonCommentHandling.Skip });
        Assert.Equal(url, doc.RootElement.GetProperty("ConnectionStrings").GetProperty("ActorSim").GetString());
    }

    /// <summary>The same order for how long `run` rides out an outage: --outage-limit, ACTORSIM_OUTAGE_LIMIT,
    /// ActorSim:OutageLimit in appsettings.json, 60 s.</summary>
    [Fact]
    public void The_outage_limit_is_the_option_else_ACTORSIM_OUTAGE_LIMIT_else_the_settings_else_60_s()
    {
        var none = new Dictionary<string, string?> { ["ACTORSIM_OUTAGE_LIMIT"] = null };
        var (exit, output, err) = Run(none, "version");
        Assert.True(exit == 0, output + err);
        Assert.Contains("outage limit 60s (default)", output);

        // Another section's OutageLimit is not ours.
        System.IO.File.WriteAllText(File, """{ "Other": { "OutageLimit": "5m" }, "OutageLimit": "6m" }""");
        (exit, output, err) = Run(none, "version");
        Assert.True(exit == 0, output + err);
        Assert.Contains("outage limit 60s (default)", output);

        System.IO.File.WriteAllText(File, """{ "actorsim": { "outageLimit": "5m" } }""");
        (exit, output, err) = Run(none, "version");
        Assert.True(exit == 0, output + err);
        Assert.Contains($"outage limit 300s (ActorSim:OutageLimit in {File})", output);
        (exit, output, err) = Run(new() { ["ACTORSIM_OUTAGE_LIMIT"] = "90s" }, "version");
        Assert.True(exit == 0, output + err);
        Assert.Contains("outage limit 90s (ACTORSIM_OUTAGE_LIMIT)", output);

        // A value that is not a duration: the file and line; one that is not a string: the same.
        System.IO.File.WriteAllText(File, "{\n  \"ActorSim\": {\n    \"OutageLimit\": \"soon\" } }");
        (exit, output, err) = Run(none, "run", "--in-memory", "--rounds", "1");
        Assert.True(exit == 2, output + err);
        Assert.Contains($"{File}:3: ActorSim:OutageLimit 'soon' is not a duration", err);
        Assert.DoesNotContain("run: ", output); // refused before it ran
        (exit, output, err) = Run(none, "run", "--in-memory", "--rounds", "1", "--outage-limit", "10s"); // the option wins: the file is not read
        Assert.True(exit == 0, output + err);
        System.IO.File.WriteAllText(File, """{ "ActorSim": { "OutageLimit": 30 } }""");
        (exit, _, err) = Run(none, "version");
        Assert.Equal(2, exit);
        Assert.Contains($"{File}:1: ActorSim:OutageLimit is not a duration (a non-empty JSON string)", err);
        (exit, _, err) = Run(new() { ["ACTORSIM_OUTAGE_LIMIT"] = "later" }, "run", "--in-memory", "--rounds", "1");
        Assert.Equal(2, exit);
        Assert.Contains("ACTORSIM_OUTAGE_LIMIT 'later' is not a duration", err);

        // Longer than .NET's timers take, past the waits built on it: refused wherever it comes from
        // (`--outage-limit 100000d` ended the process unhandled, exit 134); 30 days is the most.
        (exit, output, err) = Run(none, "run", "--in-memory", "--rounds", "1", "--outage-limit", "100000d");
        Assert.Equal((2, "", "actorsim run: --outage-limit '100000d' is longer than 30d, the most a command waits for its database"), (exit, output, err.Trim()));
        (exit, _, err) = Run(new() { ["ACTORSIM_OUTAGE_LIMIT"] = "31d" }, "version");
        Assert.Equal(2, exit);
        Assert.Contains("actorsim version: ACTORSIM_OUTAGE_LIMIT '31d' is longer than 30d", err);
        System.IO.File.WriteAllText(File, """{ "ActorSim": { "OutageLimit": "1000d" } }""");
        (exit, _, err) = Run(none, "version");
        Assert.Equal(2, exit);
        Assert.Contains($"{File}:1: ActorSim:OutageLimit '1000d' is longer than 30d", err);
        (exit, output, err) = Run(none, "run", "--in-memory", "--rounds", "1", "--outage-limit", "30d");
        Assert.True(exit == 0, output + err);
    }
}
