// Copy buttons: data-copy names the input whose value they copy.
document.querySelectorAll("button[data-copy]").forEach(function (b) {
	b.addEventListener("click", function () {
		var input = document.getElementById(b.dataset.copy);
		var done = function () { b.textContent = "Copied"; };
		input.select();
		if (navigator.clipboard) {
			navigator.clipboard.writeText(input.value).then(done, function () { document.execCommand("copy"); done(); });
		} else {
			document.execCommand("copy");
			done();
		}
	});
});
