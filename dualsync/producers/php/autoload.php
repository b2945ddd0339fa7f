<?php
// For applications without Composer: require_once this file.
require_once __DIR__ . '/src/Envelope.php';
require_once __DIR__ . '/src/Spool.php';
require_once __DIR__ . '/src/Publisher.php';
require_once __DIR__ . '/src/RedisConnect.php';
require_once __DIR__ . '/src/ReadPath.php';
