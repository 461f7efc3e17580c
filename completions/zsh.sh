
# zsh: installed as share/zsh/site-functions/_coffer (the body of the
# autoloaded function _coffer, after "#compdef coffer" and words.sh).
local cur=${words[CURRENT]} bin=${words[1]} cmd= sub= w= want= i=0
local -a cands
for ((i = 2; i < CURRENT; i++)); do
	w=${words[i]}
	if [[ $w == -- ]]; then # a command line of the app's own (deploy -- ...)
		_files
		return
	fi
	[[ $w == -* ]] && continue
	if [[ -z $cmd ]]; then
		cmd=$w
	elif [[ -z $sub ]]; then
		sub=$w
	fi
done
[[ $cmd == help && -n $sub ]] && return 1
if [[ -n $sub ]] && ! _coffer_words "$bin" "$cmd" "" | grep -qxF -- "$sub"; then
	sub=
fi
[[ $cur == -* ]] && want=-
cands=(${(f)"$(_coffer_words "$bin" "$cmd" "$sub" "$want")"})
if ((${#cands})); then
	compadd -a cands
else
	_files
fi
