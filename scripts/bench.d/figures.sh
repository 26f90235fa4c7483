#!/usr/bin/env bash
# The workloads and timed runs of scripts/bench, run by `scripts/s3-server run minio --`
# with AWS_ENDPOINT_URL and the credentials exported. Not meant to be run by hand.
set -euo pipefail
: "${BENCH_WORK:?run scripts/bench, not this file}"

W=$BENCH_WORK
N=$BENCH_RUNS
B=$PACKAGE_ASSETS_BUCKET
tool=$BENCH_TOOL
s5=$BENCH_S5CMD
ep=$AWS_ENDPOINT_URL # MinIO itself: housekeeping always goes straight to it
EP=$ep               # where the timed clients go: MinIO, or a netproxy in front of it (net_start)

step() { printf '\n==> %s\n' "$*" >&2; }
want() { [[ "$BENCH_ONLY" == *",$1,"* ]]; }
py() { python3 "$BENCH_HERE/bench.py" "$@"; }
# timed LABEL [--rss] -- CMD...: one run of CMD, its output to logs/LABEL.log.
# With --profiles the tool writes a CPU profile beside the log (other commands ignore it).
timed() {
	local label=$1 prof=""
	shift
	if [ "$BENCH_PROFILES" = 1 ]; then prof=$W/logs/$label.pprof; fi
	S3AM_CPUPROFILE=$prof py time "$BENCH_RESULTS" "$label" "$W/logs/$label.log" "$@"
}
# A commit id of our own for each upload run, so no run finds an earlier one complete.
commit_id() { printf '%s' "$1" | sha1sum | cut -c1-40; }
# Untimed housekeeping: delete a prefix, then let MinIO finish its background work.
rm_prefix() { "$s5" --endpoint-url "$ep" rm "s3://$B/$1*" >/dev/null 2>&1 || true; }
settle() { sync; sleep 2; }
# The tool first on odd runs, s5cmd first on even ones.
pair_order() { if [ $(($1 % 2)) = 1 ]; then echo tool s5cmd; else echo s5cmd tool; fi; }
# Before each figure: is anything else using the CPU? (Recorded in the report.)
quiet() { # FIGURE
	local b
	b=$(py busy 1)
	echo "busy_$1=$b" >>"$BENCH_META"
	if [ "$b" -gt 10 ]; then
		echo "bench: warning: the CPU is ${b}% busy before figure $1 with nothing of the benchmark running; figures will be noisy" >&2
	fi
}

# git with no user or system configuration: its defaults, on every machine, except
# gc.auto=0: a commit of 20,000 new objects otherwise starts `git gc --auto` in the
# background, which repacks for a minute on both cores while the figures are timed.
# (gen-repo passes this environment on to the git it runs.)
export GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null
export GIT_CONFIG_COUNT=1 GIT_CONFIG_KEY_0=gc.auto GIT_CONFIG_VALUE_0=0
export GIT_AUTHOR_NAME=bench GIT_AUTHOR_EMAIL=bench@example.com
export GIT_COMMITTER_NAME=bench GIT_COMMITTER_EMAIL=bench@example.com

gen_repo() { # PATH gen-repo-flags...
	local p=$1; shift
	(cd "$BENCH_ROOT" && go run ./scripts/gen-repo "$@" "$p") >&2
	# One pack, no deltas (fast), as a clone has; no loose objects left.
	git -C "$p" repack -a -d -q --window=0
	# Files written in the same instant as the index are "racily clean" to git and to the
	# tool alike; let the clock move on and let git refresh its index once, as a
	# developer's first `git status` would.
	sleep 1.1
	git -C "$p" status --porcelain >/dev/null
	settle # the new files' dirty pages are written back before anything is timed
}

touch_all() { find "$1" -path "$1/.git" -prune -o -type f -exec touch {} +; }

# ---------------------------------------------------------------- figures 1, 2
# check (commit not uploaded, cache empty: computes the hash and misses), hash alone
# and `git status --porcelain`, warm; then each after touching every file.
hash_figure() { # REPO SUFFIX
	local repo=$1 sfx=$2 i
	(
		export GIT_REPO_PATH=$repo PACKAGE_DIRECTORY=$W/pkg-$sfx CODE_HASH_FIND_FILTER='lambdas/**'
		export PACKAGE_ASSETS_KEY_PREFIX=miss-$sfx/
		echo "warm-up: one untimed run of each" >&2
		git -C "$repo" status --porcelain >/dev/null
		"$tool" check >/dev/null 2>&1
		"$tool" hash >/dev/null
		if [ -n "$(git -C "$repo" status --porcelain)" ]; then
			echo "bench: $repo is not clean" >&2
			exit 1
		fi
		# Warm runs take tens of milliseconds, where one run moves a median of three by a
		# tenth: 4xN of them, as figure 6.
		for i in $(seq $((4 * N))); do
			timed "check_$sfx" -- "$tool" check
			test ! -e "$PACKAGE_DIRECTORY/.found"
			timed "hash_$sfx" -- "$tool" hash
			timed "git_$sfx" -- git -C "$repo" status --porcelain
		done
		echo "every file touched before each run (all rehashed):" >&2
		for i in $(seq "$N"); do
			touch_all "$repo"
			timed "check_${sfx}_touch" -- "$tool" check
			touch_all "$repo"
			timed "hash_${sfx}_touch" -- "$tool" hash
			touch_all "$repo"
			timed "git_${sfx}_touch" -- git -C "$repo" status --porcelain
		done
		git -C "$repo" status --porcelain >/dev/null
	)
}

if want 1; then
	step "figure 1: check with code hash vs git status, 20,000 files (gen-repo defaults)"
	gen_repo "$W/repo20k"
	quiet 1
	hash_figure "$W/repo20k" 20k
fi

if want 2; then
	step "figure 2: the same on 200,000 files (-trees 10 -files 20000 -size 1600)"
	gen_repo "$W/repo200k" -trees 10 -files 20000 -size 1600
	quiet 2
	hash_figure "$W/repo200k" 200k
	want 17 || rm -rf "$W/repo200k"
fi

# ---------------------------------------------------------------- figures 17, 21
# The 100 components of figures 17 and 21 over the 200,000-file repository, each the files
# of ten of its package directories (fNN-pM: lambdas/fnNN/src/pkgM*/**).
c100_components() {
	local t m
	for t in 0 1 2 3 4 5 6 7 8 9; do for m in 0 1 2 3 4 5 6 7 8 9; do
		echo "fn0$t-pkg$m: lambdas/fn0$t/src/pkg$m*/**"
	done; done
}

# check (a miss: nothing uploaded, an empty cache) and hash of 100 components over the
# 200,000-file repository, with .gitignore shared; against git status.
if want 17; then
	step "figure 17: check of 100 components vs git status, 200,000 files"
	[ -d "$W/repo200k" ] || gen_repo "$W/repo200k" -trees 10 -files 20000 -size 1600
	quiet 17
	(
		repo=$W/repo200k
		export GIT_REPO_PATH=$repo PACKAGE_DIRECTORY=$W/pkg-c100 CODE_HASH_FIND_FILTER=.gitignore
		export PACKAGE_ASSETS_KEY_PREFIX=miss-c100/
		PACKAGE_COMPONENTS=$(c100_components)
		export PACKAGE_COMPONENTS
		echo "warm-up: one untimed run of each" >&2
		git -C "$repo" status --porcelain >/dev/null
		"$tool" check >/dev/null 2>&1
		test "$("$tool" hash | wc -l)" = 100
		for i in $(seq "$N"); do
			timed check_c100 -- "$tool" check
			test ! -e "$PACKAGE_DIRECTORY/.found"
			timed hash_c100 -- "$tool" hash
			timed git_c100 -- git -C "$repo" status --porcelain
		done
	)
	want 21 || rm -rf "$W/repo200k"
fi

# A check that finds a commit of the same 100 components (each uploaded once, one small
# file each): issue 22 item 2 wants one request, as without components (figure 6), not a
# code hash of every component first. Absolute target: <= 30 ms, the whole process.
if want 21; then
	step "figure 21: check that finds a commit of 100 components, 200,000 files"
	[ -d "$W/repo200k" ] || gen_repo "$W/repo200k" -trees 10 -files 20000 -size 1600
	quiet 21
	(
		repo=$W/repo200k
		export GIT_REPO_PATH=$repo PACKAGE_DIRECTORY=$W/pkg-c100found CODE_HASH_FIND_FILTER=.gitignore
		export PACKAGE_ASSETS_KEY_PREFIX=found-c100/
		PACKAGE_COMPONENTS=$(c100_components)
		export PACKAGE_COMPONENTS
		echo "setting up: check, a build of one file a component, upload" >&2
		"$tool" check >/dev/null 2>&1
		for c in $(printf '%s\n' "$PACKAGE_COMPONENTS" | cut -d: -f1); do
			mkdir -p "$PACKAGE_DIRECTORY/$c"
			echo "a build of $c" >"$PACKAGE_DIRECTORY/$c/out.zip"
		done
		"$tool" upload >"$W/logs/found_c100-upload.log" 2>&1
		"$tool" check >/dev/null 2>&1
		test -e "$PACKAGE_DIRECTORY/.found" || {
			echo "bench: the check after the upload of 100 components did not find the commit" >&2
			exit 1
		}
		for i in $(seq $((4 * N))); do
			timed found_c100_tool -- "$tool" check
			test -e "$PACKAGE_DIRECTORY/.found"
		done
	)
	rm -rf "$W/repo200k"
fi

# ---------------------------------------------------------------- uploads, figures 3-5, 8
# Every timed upload starts from the same state: the previous run's objects deleted, written
# back, and two seconds idle. The old order (the tool first after the delete and the pause,
# s5cmd straight after it) favoured s5cmd: an upload that is not the first after the delete
# tends to be faster (figure 10 and docs/benchmarks.md, "Method"). So each run gets its own
# delete and pause, and the tool and s5cmd swap places each run. aws, not a target, goes last.
upload_figure() { # NAME DIR AWS_RUNS [--rss]
	local name=$1 dir=$2 aws_runs=$3 rss=${4:-} i who
	for i in $(seq "$N"); do
		for who in $(pair_order "$i") aws; do
			[ "$who" = aws ] && [ "$i" -gt "$aws_runs" ] && continue
			if [ "$who" = tool ]; then
				commit_id "$name-$i" >"$dir/.commit-hash"
				rm -f "$dir/.found" "$dir/.code-hash"
			fi
			settle
			case $who in
			tool)
				PACKAGE_DIRECTORY=$dir PACKAGE_ASSETS_KEY_PREFIX=tool-$name/ PACKAGE_ASSETS_ENDPOINT=$EP \
					timed "${name}_tool" $rss -- "$tool" upload
				grep -q "result: uploaded" "$W/logs/${name}_tool.log" || {
					echo "bench: the upload did not upload" >&2
					cat "$W/logs/${name}_tool.log" >&2
					exit 1
				}
				rm_prefix "tool-$name/"
				;;
			s5cmd)
				timed "${name}_s5cmd" $rss -- "$s5" --endpoint-url "$EP" cp --exclude '.*' "$dir/*" "s3://$B/s5cmd-$name/$i/"
				rm_prefix "s5cmd-$name/"
				;;
			aws)
				timed "${name}_aws" $rss -- aws --endpoint-url "$EP" s3 cp --recursive --only-show-errors \
					--exclude '.*' "$dir" "s3://$B/aws-$name/$i/"
				rm_prefix "aws-$name/"
				;;
			esac
		done
	done
}

if want 3 || want 7; then
	step "payload: 8 files of 64 MiB and 200 of 200 KiB (551 MiB, seeded random)"
	py gen "$W/set552" big.zip:67108864:8 small.zip:204800:200
fi
if want 3; then
	step "figure 3: upload 551 MiB in 208 files vs s5cmd and aws"
	quiet 3
	upload_figure up552 "$W/set552" "$N"
fi

if want 4 || want 8; then
	step "figures 4 and 8: upload one 1 GiB file vs s5cmd and aws, with peak RSS (GNU time)"
	py gen "$W/set1g" one.bin:1073741824:1
	quiet 4
	upload_figure up1g "$W/set1g" "$N" --rss
	want 13 || want 19 || rm -rf "$W/set1g"
fi

if want 5; then
	step "figure 5: upload 10,000 files of 10 KiB vs s5cmd and aws ($BENCH_AWS_SMALL_N aws runs)"
	py gen "$W/set10k" small.js:10240:10000
	quiet 5
	upload_figure up10k "$W/set10k" "$BENCH_AWS_SMALL_N"
	want 10 || rm -rf "$W/set10k"
fi

# ---------------------------------------------------------------- figure 10 (--only 10)
# The harness's own check, not the tool's: the same s5cmd upload three times in a row. First
# after the delete and the pause every timed run gets (pos_settled); then straight after it
# (pos_next: how the old harness ran s5cmd, straight after the tool); then after a pause
# again, with both earlier uploads still in the bucket (pos_paused).
if want 10; then
	step "figure 10: harness check, s5cmd of 10,000 files after the pause, straight after, after a pause again"
	[ -d "$W/set10k" ] || py gen "$W/set10k" small.js:10240:10000
	quiet 10
	for i in $(seq "$N"); do
		settle
		timed pos_settled -- "$s5" --endpoint-url "$ep" cp --exclude '.*' "$W/set10k/*" "s3://$B/pos/a$i/"
		timed pos_next -- "$s5" --endpoint-url "$ep" cp --exclude '.*' "$W/set10k/*" "s3://$B/pos/b$i/"
		settle
		timed pos_paused -- "$s5" --endpoint-url "$ep" cp --exclude '.*' "$W/set10k/*" "s3://$B/pos/c$i/"
		rm_prefix "pos/"
	done
fi

# ---------------------------------------------------------------- figure 6
# found_figure LABEL: check that finds the commit, against one `s5cmd head` of its
# record through the same endpoint ($EP). Set up once per endpoint under its own prefix.
found_figure() {
	local l=$1 i
	[ -d "$W/repo20k" ] || gen_repo "$W/repo20k"
	(
		export GIT_REPO_PATH=$W/repo20k PACKAGE_DIRECTORY=$W/pkg-$l CODE_HASH_FIND_FILTER='lambdas/**'
		export PACKAGE_ASSETS_KEY_PREFIX=$l/ PACKAGE_ASSETS_ENDPOINT=$EP
		"$tool" check >/dev/null 2>&1
		echo "a build" >"$PACKAGE_DIRECTORY/fn.zip"
		rm -f "$PACKAGE_DIRECTORY/.code-hash"
		"$tool" upload >/dev/null 2>&1
		commit=$(cat "$PACKAGE_DIRECTORY/.commit-hash")
		record="s3://$B/$l/artifacts/$commit/.s3-asset-manager.json"
		"$tool" check >/dev/null 2>&1
		"$s5" --endpoint-url "$EP" head "$record" >/dev/null
		for i in $(seq $((4 * N))); do
			timed "${l}_tool" -- "$tool" check
			test -e "$PACKAGE_DIRECTORY/.found"
			timed "${l}_s5cmd" -- "$s5" --endpoint-url "$EP" head "$record"
		done
	)
}

if want 6; then
	step "figure 6: check that finds the commit (20,000-file repo, filter set)"
	[ -d "$W/repo20k" ] || gen_repo "$W/repo20k"
	quiet 6
	found_figure found
fi

# ---------------------------------------------------------------- figure 7
# hit_figure LABEL: a cache hit (check copies 208 objects, 551 MiB, inside S3) against
# s5cmd's server-side copy of the same objects, both through $EP.
hit_figure() {
	local l=$1 hit=$W/repo-$1 i who
	mkdir -p "$hit/lambdas/fn1" "$hit/lambdas/fn2"
	echo 'def handler(event, context): return "fn1"' >"$hit/lambdas/fn1/index.py"
	echo 'def handler(event, context): return "fn2"' >"$hit/lambdas/fn2/index.py"
	echo '# docs' >"$hit/README.md"
	git -C "$hit" -c init.defaultBranch=main init -q
	git -C "$hit" add -A
	git -C "$hit" commit -q -m first
	(
		export GIT_REPO_PATH=$hit PACKAGE_DIRECTORY=$W/pkg-$l CODE_HASH_FIND_FILTER='lambdas/**'
		export PACKAGE_ASSETS_KEY_PREFIX=$l/ RESULT_DOTENV_FILE=$W/$l.env PACKAGE_ASSETS_ENDPOINT=$EP
		echo "filling the cache: check, then upload with .code-hash" >&2
		"$tool" check >/dev/null 2>&1
		ln "$W"/set552/*.zip "$PACKAGE_DIRECTORY/"
		PACKAGE_ASSETS_ENDPOINT=$ep "$tool" upload >"$W/logs/$l-fill.log" 2>&1
		code=$(cat "$PACKAGE_DIRECTORY/.code-hash")
		for i in $(seq "$N"); do
			for who in $(pair_order "$i"); do
				if [ "$who" = tool ]; then
					echo "docs $i" >>"$hit/README.md"
					git -C "$hit" commit -q -am "docs $i"
					rm -rf "$PACKAGE_DIRECTORY" "$RESULT_DOTENV_FILE"
				fi
				settle # as for the uploads: the same state before every timed run
				if [ "$who" = tool ]; then
					timed "${l}_tool" -- "$tool" check
					grep -qx 'CACHE_HIT=true' "$RESULT_DOTENV_FILE" || {
						echo "bench: check did not hit the cache" >&2
						cat "$W/logs/${l}_tool.log" >&2
						exit 1
					}
					rm_prefix "$l/artifacts/"
				else
					timed "${l}_s5cmd" -- "$s5" --endpoint-url "$EP" cp --exclude '.*' "s3://$B/$l/cache/$code/*" "s3://$B/s5copy-$l/$i/"
					rm_prefix "s5copy-$l/"
				fi
			done
		done
	)
}

if want 7; then
	step "figure 7: cache hit (check copies 208 objects, 551 MiB, inside S3) vs s5cmd server-side copy"
	quiet 7
	hit_figure hit
fi

# ---------------------------------------------------------------- figures 11-16
# The same work against a distant endpoint: scripts/bench.d/netproxy in front of MinIO,
# HTTPS with the harness's certificate (AWS_CA_BUNDLE), HTTP/1.1 only as S3, and a round
# trip of BENCH_RTTS milliseconds on every exchange (half each way, below TLS, so new
# connections pay for their handshakes). Figure 16 adds throttling: 503 SlowDown above
# BENCH_THROTTLE requests in flight, as S3 answers a busy prefix.
NETPROXY_PID=""
net_start() { # RTT_MS [netproxy flags...]: start a proxy, point EP at it
	local rtt=$1 af=$W/netproxy.addr
	shift
	rm -f "$af"
	"$BENCH_NETPROXY" serve -target "$ep" -cert "$W/tls/cert.pem" -key "$W/tls/key.pem" \
		-rtt "${rtt}ms" -addr-file "$af" "$@" 2>>"$W/logs/netproxy.log" &
	NETPROXY_PID=$!
	local i
	for i in $(seq 100); do
		[ -s "$af" ] && break
		sleep 0.05
	done
	[ -s "$af" ] || { echo "bench: netproxy did not start" >&2; exit 1; }
	EP=$(cat "$af")
}
net_stop() { # the proxy's request counts go to its log
	[ -n "$NETPROXY_PID" ] || return 0
	kill "$NETPROXY_PID"
	wait "$NETPROXY_PID" || true
	NETPROXY_PID=""
	EP=$ep
}
trap net_stop EXIT

rtts=${BENCH_RTTS//,/ }
if want 11 || want 16; then
	[ -d "$W/set2k" ] || py gen "$W/set2k" small.js:10240:2000
fi
if want 11; then
	for r in $rtts; do
		step "figure 11: upload 2,000 files of 10 KiB over HTTPS with a ${r} ms round trip vs s5cmd and aws"
		quiet 11
		net_start "$r"
		upload_figure "up2k_r$r" "$W/set2k" "$BENCH_AWS_SMALL_N"
		net_stop
	done
fi
if want 12 || want 15; then
	[ -d "$W/set552" ] || py gen "$W/set552" big.zip:67108864:8 small.zip:204800:200
fi
if want 12; then
	for r in $rtts; do
		step "figure 12: upload 551 MiB in 208 files over HTTPS with a ${r} ms round trip vs s5cmd and aws"
		quiet 12
		net_start "$r"
		upload_figure "up552_r$r" "$W/set552" "$N"
		net_stop
	done
fi
if want 13; then
	[ -d "$W/set1g" ] || py gen "$W/set1g" one.bin:1073741824:1
	for r in $rtts; do
		step "figure 13: upload one 1 GiB file over HTTPS with a ${r} ms round trip vs s5cmd and aws, with peak RSS"
		quiet 13
		net_start "$r"
		upload_figure "up1g_r$r" "$W/set1g" "$N" --rss
		net_stop
	done
	want 19 || rm -rf "$W/set1g"
fi
if want 14; then
	for r in $rtts; do
		step "figure 14: check that finds the commit over HTTPS with a ${r} ms round trip"
		quiet 14
		net_start "$r"
		found_figure "found_r$r"
		net_stop
	done
fi
if want 15; then
	for r in $rtts; do
		step "figure 15: cache hit copying 208 objects over HTTPS with a ${r} ms round trip vs s5cmd"
		quiet 15
		net_start "$r"
		hit_figure "hit_r$r"
		net_stop
	done
fi
if want 16; then
	r=${rtts%% *}
	step "figure 16: upload 2,000 files of 10 KiB, ${r} ms round trip, through a store throttling above $BENCH_THROTTLE requests in flight"
	quiet 16
	# The tool's upload unthrottled and throttled (alternating places), then s5cmd's
	# throttled: each through a proxy of its own, whose count of 503s is recorded.
	throttle_run() { # WHO MODE RUN
		local who=$1 mode=$2 i=$3
		if [ "$mode" = free ]; then net_start "$r"; else net_start "$r" -max-in-flight "$BENCH_THROTTLE"; fi
		settle
		if [ "$who" = tool ]; then
			commit_id "throttle-$mode-$i" >"$W/set2k/.commit-hash"
			rm -f "$W/set2k/.found" "$W/set2k/.code-hash"
			PACKAGE_DIRECTORY=$W/set2k PACKAGE_ASSETS_KEY_PREFIX=tool-throttle/ PACKAGE_ASSETS_ENDPOINT=$EP \
				timed "throttle_${mode}_tool" -- "$tool" upload
			grep -q "result: uploaded" "$W/logs/throttle_${mode}_tool.log" || {
				echo "bench: the upload did not upload" >&2
				exit 1
			}
			rm_prefix "tool-throttle/"
		else
			# s5cmd may give up on some files (its 10 attempts spent): recorded, not fatal.
			timed "throttle_${mode}_s5cmd" -- bash -c '"$@" || echo "s5cmd-exit-status=$?"' s5 \
				"$s5" --endpoint-url "$EP" cp --exclude '.*' "$W/set2k/*" "s3://$B/s5cmd-throttle/$i/"
			if grep -q '^s5cmd-exit-status=' "$W/logs/throttle_${mode}_s5cmd.log"; then
				echo "failed_throttled_s5cmd_$i=$(grep -c '^ERROR' "$W/logs/throttle_${mode}_s5cmd.log" || true)" >>"$BENCH_META"
			fi
			rm_prefix "s5cmd-throttle/"
		fi
		net_stop
		tail -1 "$W/logs/netproxy.log" |
			sed -n "s/^netproxy: \([0-9]*\) requests passed, \([0-9]*\) answered.*/slowdown_${mode}_${who}_$i=\2 \1/p" >>"$BENCH_META"
	}
	for i in $(seq "$N"); do
		if [ $((i % 2)) = 1 ]; then
			throttle_run tool free "$i"
			throttle_run tool throttled "$i"
		else
			throttle_run tool throttled "$i"
			throttle_run tool free "$i"
		fi
		throttle_run s5cmd throttled "$i"
	done
fi

# ---------------------------------------------------------------- figures 18, 19
# Downloads: a set the tool uploaded (so it has its completion record) fetched into an empty
# directory by `download`, by `s5cmd cp` and by `aws s3 cp --recursive` (the record left out),
# the tool and s5cmd swapping places each run, aws last; each after the previous run's files
# are deleted and written back, and the pause. 18: the 551 MiB in 208 files; 19: one 1 GiB
# file, with peak RSS. BENCH_DL_RUNS runs each (the spread target wants 10), aws in the
# first three only (it is no target).
download_figure() { # NAME DIR [--rss]
	local name=$1 dir=$2 rss=${3:-} out=$W/dl-out i who commit want_n
	commit=$(commit_id "$name")
	echo "$commit" >"$dir/.commit-hash"
	rm -f "$dir/.found" "$dir/.code-hash"
	PACKAGE_DIRECTORY=$dir PACKAGE_ASSETS_KEY_PREFIX=tool-$name/ "$tool" upload >"$W/logs/$name-fill.log" 2>&1
	want_n=$(find "$dir" -type f ! -name '.*' | wc -l)
	local src="s3://$B/tool-$name/artifacts/$commit/"
	for i in $(seq "$BENCH_DL_RUNS"); do
		for who in $(pair_order "$i") aws; do
			[ "$who" = aws ] && [ "$i" -gt 3 ] && continue
			rm -rf "$out"
			mkdir -p "$out"
			settle
			case $who in
			tool)
				PACKAGE_DIRECTORY=$out PACKAGE_ASSETS_COMMIT=$commit PACKAGE_ASSETS_KEY_PREFIX=tool-$name/ \
					PACKAGE_ASSETS_ENDPOINT=$EP timed "${name}_tool" $rss -- "$tool" download
				;;
			s5cmd)
				timed "${name}_s5cmd" $rss -- "$s5" --endpoint-url "$EP" cp --exclude '.*' "$src*" "$out/"
				;;
			aws)
				timed "${name}_aws" $rss -- aws --endpoint-url "$EP" s3 cp --recursive --only-show-errors \
					--exclude '.*' "$src" "$out"
				;;
			esac
			[ "$(find "$out" -type f ! -name '.*' | wc -l)" = "$want_n" ] || {
				echo "bench: $who fetched $(find "$out" -type f | wc -l) files, not $want_n" >&2
				exit 1
			}
		done
	done
	rm -rf "$out"
	rm_prefix "tool-$name/"
}

if want 18; then
	[ -d "$W/set552" ] || py gen "$W/set552" big.zip:67108864:8 small.zip:204800:200
	step "figure 18: download 551 MiB in 208 files vs s5cmd and aws, with peak RSS (GNU time)"
	quiet 18
	download_figure dl552 "$W/set552" --rss
fi
if want 19; then
	[ -d "$W/set1g" ] || py gen "$W/set1g" one.bin:1073741824:1
	step "figure 19: download one 1 GiB file vs s5cmd and aws, with peak RSS (GNU time)"
	quiet 19
	download_figure dl1g "$W/set1g" --rss
	rm -rf "$W/set1g"
fi

# ---------------------------------------------------------------- figure 20
# Prune at scale: 10,000 commit sets of 20 files and 1,000 cache entries (each the source of
# ten commits' copies), recorded 100 to 200 days ago, 231,000 objects written by pruneseed as
# the tool writes sets. Timed once each (the seeding takes minutes): the dry run's plan, then
# prune with apply, which deletes all but the newest 10 commits, with peak RSS.
if want 20; then
	step "figure 20: prune 10,000 commit sets (210,000 objects) and 1,000 cache entries"
	"$BENCH_PRUNESEED" -bucket "$B" -prefix prune/ >"$W/logs/pruneseed.log" 2>&1
	settle
	quiet 20
	PACKAGE_ASSETS_KEY_PREFIX=prune/ timed prune_plan_tool --rss -- "$tool" prune
	settle
	PACKAGE_ASSETS_KEY_PREFIX=prune/ PACKAGE_ASSETS_PRUNE_APPLY=true timed prune_apply_tool --rss -- "$tool" prune
	left=$("$s5" --endpoint-url "$ep" ls "s3://$B/prune/*" 2>/dev/null | wc -l)
	[ "$left" = 210 ] || {
		echo "bench: prune left $left objects, not the newest 10 commit sets (210)" >&2
		exit 1
	}
	rm_prefix prune/
fi
